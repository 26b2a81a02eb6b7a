export { MailfleetTerraformStack, type MailfleetTerraformStackProps } from './stack.js';
export { terraformJson, writeTerraform, type TerraformJson } from './synth.js';
export { findTerraformTools, validateTerraform, type TerraformTools, type ValidateResult } from './validate.js';
