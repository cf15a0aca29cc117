// docker's rule for volume names, with dockerd's own message.
import { KrError } from '../../util/errors.ts';

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export function checkVolumeName(name: string): void {
  if (!NAME.test(name)) {
    throw new KrError('invalid', `create ${name}: ${JSON.stringify(name)} includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`);
  }
}
