/**
 * Reads --tls-cert and --tls-key and checks them before the server is built, so a wrong file
 * is reported as the option and the file to fix, not as an OpenSSL error code
 * ("error:0480006C:PEM routines::no start line") from deep inside https.createServer.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { ConfigError } from '../config.js';

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

/** OpenSSL's reason without its "error:0480006C:PEM routines::" prefix. */
function reason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/^error:[0-9A-F]+:[^:]*:[^:]*:/i, '');
}

async function read(file: string, option: 'tlsCert' | 'tlsKey'): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    throw new ConfigError(option, `cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? reason(error)}): check the path and permissions`);
  }
}

/**
 * @throws ConfigError naming tlsCert or tlsKey, the file, and what is wrong with it.
 */
export async function loadTlsFiles(certFile: string, keyFile: string): Promise<TlsFiles> {
  const cert = await read(certFile, 'tlsCert');
  const key = await read(keyFile, 'tlsKey');
  try {
    new X509Certificate(cert);
  } catch (error) {
    throw new ConfigError('tlsCert', `${certFile} is not a PEM certificate (${reason(error)}): it should start with -----BEGIN CERTIFICATE-----`);
  }
  try {
    createPrivateKey(key);
  } catch (error) {
    throw new ConfigError('tlsKey', `${keyFile} is not an unencrypted PEM private key (${reason(error)}): it should hold a -----BEGIN … PRIVATE KEY----- block without a passphrase`);
  }
  try {
    createSecureContext({ cert, key });
  } catch (error) {
    throw new ConfigError('tlsKey', `${keyFile} is not the key of the certificate in ${certFile} (${reason(error)}): give the matching pair`);
  }
  return { cert, key };
}
