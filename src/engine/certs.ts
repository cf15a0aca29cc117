// `krd certs DIR`: a local CA, a server certificate (SANs 127.0.0.1, ::1, localhost) and a
// client certificate, with openssl, in the file names docker expects in DOCKER_CERT_PATH:
//   ca.pem ca-key.pem  server-cert.pem server-key.pem  cert.pem key.pem (client)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync, rmSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { KrError } from '../util/errors.ts';

export interface CertFiles {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new KrError('io', `openssl ${args[0]} failed: ${(e.stderr?.toString() || e.message).trim().split('\n')[0]}`);
  }
}

export function makeCerts(dir: string, opts: { days?: number; sans?: string[] } = {}): CertFiles {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const files: CertFiles = {
    ca: join(dir, 'ca.pem'),
    serverCert: join(dir, 'server-cert.pem'),
    serverKey: join(dir, 'server-key.pem'),
    clientCert: join(dir, 'cert.pem'),
    clientKey: join(dir, 'key.pem'),
  };
  for (const f of [...Object.values(files), join(dir, 'ca-key.pem')]) {
    if (existsSync(f)) throw new KrError('conflict', `${f} exists; refusing to overwrite certificates`);
  }
  const days = String(opts.days ?? 825);
  const sans = opts.sans ?? ['IP:127.0.0.1', 'IP:::1', 'DNS:localhost'];
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', days, '-subj', '/CN=kraud krd local CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  const sign = (name: string, cn: string, ext: string, cert: string, key: string) => {
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(['req', ...ec, '-keyout', key, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', cert, '-days', days, '-extfile', `${name}.ext`], dir);
    rmSync(join(dir, `${name}.csr`));
    rmSync(join(dir, `${name}.ext`));
  };
  sign('server', 'localhost', `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${sans.join(',')}\n`, 'server-cert.pem', 'server-key.pem');
  sign('client', 'krd client', 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n', 'cert.pem', 'key.pem');
  rmSync(join(dir, 'ca.srl'), { force: true });
  for (const k of ['ca-key.pem', 'server-key.pem', 'key.pem']) chmodSync(join(dir, k), 0o600);
  return files;
}
