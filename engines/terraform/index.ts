export { MailfleetTerraformStack, type MailfleetTerraformStackProps } from './stack.js';
export { terraformJson, writeTerraform, type TerraformJson } from './synth.js';
