import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDebianPackage } from './debian';
import { runCommand } from './run-command';

/** A certificate and its key, as PEM files. */
export interface CertificateFiles {
  readonly cert: string;
  readonly key: string;
}

/** A scratch CA, a server certificate for loopback and a client certificate, made with Debian's openssl. */
export interface TestPki {
  readonly ca: string;
  /** For `localhost` and 127.0.0.1; good for client auth too, as servers of a cluster call each other with it. */
  readonly server: CertificateFiles;
  readonly client: CertificateFiles;
  /** The name the server certificate is for, to set as the TLS server name. */
  readonly serverName: string;
}

/** Makes a CA and two leaf certificates in `dir`, valid for two days: enough for any test, useless after. */
export async function makeTestPki(dir: string): Promise<TestPki> {
  const openssl = await ensureDebianPackage('openssl', 'openssl', 'version');
  const run = (...args: string[]) =>
    runCommand([openssl, ...args], { label: `openssl ${args[0]}`, quiet: true });
  const path = (name: string) => join(dir, name);
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run(
    'req',
    '-x509',
    ...ecKey,
    '-keyout',
    path('ca.key'),
    '-out',
    path('ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=Baton test CA',
  );
  const leaf = async (name: string, subject: string, extensions: string[]) => {
    await writeFile(path(`${name}.ext`), `${extensions.join('\n')}\n`);
    await run('req', ...ecKey, '-keyout', path(`${name}.key`), '-out', path(`${name}.csr`), '-subj', subject);
    await run(
      'x509',
      '-req',
      '-in',
      path(`${name}.csr`),
      '-CA',
      path('ca.pem'),
      '-CAkey',
      path('ca.key'),
      '-CAcreateserial',
      '-out',
      path(`${name}.pem`),
      '-days',
      '2',
      '-extfile',
      path(`${name}.ext`),
    );
    return { cert: path(`${name}.pem`), key: path(`${name}.key`) };
  };
  const serverName = 'localhost';
  const server = await leaf('server', `/CN=${serverName}`, [
    'basicConstraints=CA:FALSE',
    `subjectAltName=DNS:${serverName},IP:127.0.0.1`,
    'keyUsage=digitalSignature',
    'extendedKeyUsage=serverAuth,clientAuth',
  ]);
  const client = await leaf('client', '/CN=baton-worker', [
    'basicConstraints=CA:FALSE',
    'keyUsage=digitalSignature',
    'extendedKeyUsage=clientAuth',
  ]);
  return { ca: path('ca.pem'), server, client, serverName };
}
