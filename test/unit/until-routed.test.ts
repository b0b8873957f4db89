import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { untilRouted } from '../../infra/kubernetes/demo-app-objects';

describe('waiting for a Service to route', () => {
  it('probes on a new connection each time, so a connection made before the route cannot hold it back', async () => {
    // The first connection stands for the egress proxy that answered before kube-proxy's rule existed: it keeps
    // the connection alive and answers 404 on it for ever. Every later connection reaches the pod.
    let connections = 0;
    const server = createServer((request, response) => {
      const first = (request.socket as { baton?: number }).baton === 1;
      response.writeHead(first ? 404 : 200, first ? {} : { 'x-app-version': 'v1' }).end();
    });
    server.on('connection', (socket) => Object.assign(socket, { baton: ++connections }));
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      await untilRouted(`http://127.0.0.1:${port}/`, 'v1', Date.now() + 5_000);
      assert.ok(connections >= 2);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('says what the Service last answered when it never serves the version', async () => {
    const server = createServer((_request, response) =>
      response.writeHead(200, { 'x-app-version': 'v0' }).end(),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      await assert.rejects(
        untilRouted(`http://127.0.0.1:${port}/`, 'v1', Date.now() + 500),
        /does not answer with v1; it last answered: HTTP 200, version v0/,
      );
    } finally {
      server.close();
    }
  });
});
