/**
 * Progress for long drill steps: a spinner line rewritten in place on a TTY, plain lines otherwise
 * (CI logs, files, pipes), nothing in tests.
 */
export interface IProgress {
  start(title: string): void;
  /** A status change inside the current step (e.g. "waiting for checkpoint: Active"). */
  update(text: string): void;
  done(title: string, ok: boolean, detail?: string): void;
}

export const silentProgress: IProgress = { start() {}, update() {}, done() {} };

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export function createProgress(stream: NodeJS.WriteStream = process.stderr): IProgress {
  const started = new Map<string, number>();
  let current = '';
  let text = '';
  let timer: NodeJS.Timeout | undefined;
  let frame = 0;
  const elapsed = (title: string) => ((Date.now() - (started.get(title) ?? Date.now())) / 1000).toFixed(1);
  if (!stream.isTTY) {
    let lastUpdate = '';
    return {
      start(title) {
        started.set(title, Date.now());
        stream.write(`… ${title}\n`);
      },
      update(t) {
        // Plain output: only changes, so polling loops do not flood a log.
        if (t !== lastUpdate) stream.write(`  ${t}\n`);
        lastUpdate = t;
      },
      done(title, ok, detail) {
        stream.write(`${ok ? '✔' : '✘'} ${title} (${elapsed(title)} s)${detail ? ': ' + detail : ''}\n`);
      },
    };
  }
  const draw = () => {
    stream.write(
      `\r\x1b[2K${FRAMES[frame++ % FRAMES.length]} ${current} (${elapsed(current)} s)${text ? ' — ' + text : ''}`,
    );
  };
  return {
    start(title) {
      started.set(title, Date.now());
      current = title;
      text = '';
      clearInterval(timer);
      timer = setInterval(draw, 100);
      timer.unref();
      draw();
    },
    update(t) {
      text = t;
    },
    done(title, ok, detail) {
      clearInterval(timer);
      timer = undefined;
      stream.write(
        `\r\x1b[2K${ok ? '✔' : '✘'} ${title} (${elapsed(title)} s)${detail ? ': ' + detail : ''}\n`,
      );
    },
  };
}
