import { TinkerValidationError } from "../../../client/errors.js";

/**
 * A model, tokenizer or adapter file that is missing, malformed, or does not match what the engine
 * expects. `file` is the offending path; `field` (from TinkerValidationError) names the tensor or
 * config key when there is one.
 */
export class ModelFileError extends TinkerValidationError {
  override name = "ModelFileError";
  readonly file: string;
  constructor(file: string, message: string, field?: string) {
    super(`${file}: ${message}`, field);
    this.file = file;
  }
}
