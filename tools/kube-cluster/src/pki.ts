import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KubeClusterError } from './errors.js';

const run = promisify(execFile);

/** Paths (PEM files) of a throwaway PKI for one cluster. */
export interface Pki {
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  adminCert: string;
  adminKey: string;
  /** ServiceAccount token signing key pair (ES256). */
  saKey: string;
  saPub: string;
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args, { timeout: 30_000 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new KubeClusterError(`openssl ${args[0]} failed: ${err.stderr?.trim() || err.message}`, 'pki');
  }
}

/** Issues a leaf certificate signed by the CA (P-256 keys, valid one day). */
async function leaf(
  dir: string,
  ca: { cert: string; key: string },
  name: string,
  subject: string,
  ext: string,
): Promise<{ cert: string; key: string }> {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.crt`);
  const extFile = join(dir, `${name}.ext`);
  await writeFile(extFile, ext);
  await openssl([
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    key,
    '-out',
    csr,
    '-subj',
    subject,
  ]);
  await openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-CAcreateserial',
    '-out',
    cert,
    '-days',
    '1',
    '-extfile',
    extFile,
  ]);
  return { cert, key };
}

/**
 * Generates the cluster's certificates with openssl: a CA, the apiserver's serving certificate for
 * 127.0.0.1/localhost (plus `servingIPs`, e.g. the address a lab's agents reach it on), an admin
 * client certificate in `system:masters`, and the ServiceAccount signing key (node:crypto).
 */
export async function generatePki(dir: string, opts: { servingIPs?: readonly string[] } = {}): Promise<Pki> {
  for (const ip of opts.servingIPs ?? [])
    if (!/^[0-9a-fA-F.:]+$/.test(ip)) throw new KubeClusterError(`servingIPs: "${ip}" is not an IP address`, 'pki');
  const extraSans = (opts.servingIPs ?? []).map((ip) => `,IP:${ip}`).join('');
  const caCert = join(dir, 'ca.crt');
  const caKey = join(dir, 'ca.key');
  await openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    caKey,
    '-out',
    caCert,
    '-days',
    '1',
    '-subj',
    '/CN=veil-test-ca',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const ca = { cert: caCert, key: caKey };
  const serving = await leaf(
    dir,
    ca,
    'apiserver',
    '/CN=kube-apiserver',
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' +
      `subjectAltName=IP:127.0.0.1${extraSans},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\n`,
  );
  const admin = await leaf(
    dir,
    ca,
    'admin',
    '/O=system:masters/CN=veil-test-admin',
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n',
  );
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const saKey = join(dir, 'sa.key');
  const saPub = join(dir, 'sa.pub');
  await writeFile(saKey, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  await writeFile(saPub, publicKey.export({ type: 'spki', format: 'pem' }));
  return {
    caCert,
    caKey,
    servingCert: serving.cert,
    servingKey: serving.key,
    adminCert: admin.cert,
    adminKey: admin.key,
    saKey,
    saPub,
  };
}

/** The PEM contents a client needs: CA, and the admin client pair. */
export async function readClientPem(pki: Pki): Promise<{ ca: string; cert: string; key: string }> {
  const [ca, cert, key] = await Promise.all([
    readFile(pki.caCert, 'utf8'),
    readFile(pki.adminCert, 'utf8'),
    readFile(pki.adminKey, 'utf8'),
  ]);
  return { ca, cert, key };
}
