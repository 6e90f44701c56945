import { execFile } from "node:child_process";
import { TinkerError } from "../errors.js";
import { validateApiKey } from "./config.js";

/**
 * Run `TINKER_CREDENTIAL_CMD` through the shell and return its trimmed stdout. It is run afresh
 * for every token exchange, as in the reference.
 */
export function runCredentialCommand(cmd: string, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("/bin/sh", ["-c", cmd], { timeout: timeoutMs }, (err, stdout) => {
      if (err) {
        reject(
          new TinkerError(
            `The credential command (TINKER_CREDENTIAL_CMD) failed: ${err.message.split("\n")[0]}. ` +
              "Run it in a shell to check that it prints your Tinker API key.",
            { cause: err },
          ),
        );
        return;
      }
      const key = stdout.trim();
      if (key === "") {
        reject(new TinkerError("The credential command (TINKER_CREDENTIAL_CMD) printed nothing."));
        return;
      }
      try {
        validateApiKey(key);
      } catch (e) {
        reject(e);
        return;
      }
      resolve(key);
    });
  });
}
