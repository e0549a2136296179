import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A minimal server for Nx's self-hosted remote cache protocol, for tests only: `GET` and `PUT`
 * on `/v1/cache/{hash}` with a bearer token; a `PUT` of a hash it holds answers 409.
 */
export interface RemoteCacheServer {
  url: string;
  token: string;
  /** Every body uploaded, by hash. */
  uploads: Map<string, Buffer>;
  downloads: string[];
  close(): Promise<void>;
}

export async function startRemoteCacheServer(token = 'e2e-token'): Promise<RemoteCacheServer> {
  const uploads = new Map<string, Buffer>();
  const downloads: string[] = [];
  const server: Server = createServer((request, response) => {
    const hash = /^\/v1\/cache\/([^/?]+)$/.exec(request.url ?? '')?.[1];
    if (request.headers.authorization !== `Bearer ${token}`) return end(response, 403);
    if (!hash) return end(response, 404);
    if (request.method === 'GET') {
      const body = uploads.get(hash);
      if (!body) return end(response, 404);
      downloads.push(hash);
      response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
      return response.end(body);
    }
    if (request.method === 'PUT') {
      if (uploads.has(hash)) return end(response, 409);
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        uploads.set(hash, Buffer.concat(chunks));
        end(response, 200);
      });
      return;
    }
    end(response, 405);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    token,
    uploads,
    downloads,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function end(response: import('node:http').ServerResponse, status: number): void {
  response.writeHead(status);
  response.end();
}
