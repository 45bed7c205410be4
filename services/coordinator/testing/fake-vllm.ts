// An HTTP server on loopback that answers vLLM's runtime LoRA routes as vLLM does (vLLM itself needs a GPU): GET
// /v1/models, POST /v1/load_lora_adapter (plain-text "Success: …"), POST /v1/unload_lora_adapter (404 for a name it
// does not serve). It records every request; `failLoad` makes loads fail with the given answer, `failUnload` the
// unloads of one name.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  method: string;
  url: string;
  body: unknown;
  authorization?: string;
}

export class FakeVllm {
  readonly received: Received[] = [];
  readonly served = new Set<string>(['pi-init']);
  failLoad?: { status: number; body: string };
  failUnload?: { name: string; status: number; body: string };
  private server!: http.Server;
  baseUrl = '';

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      let text = '';
      req.on('data', (c) => (text += c));
      req.on('end', () => {
        const body = text ? JSON.parse(text) : undefined;
        this.received.push({ method: req.method!, url: req.url!, body, authorization: req.headers.authorization });
        const reply = (status: number, out: string, type = 'application/json') => res.writeHead(status, { 'content-type': type }).end(out);
        if (req.method === 'GET' && req.url === '/v1/models') return reply(200, JSON.stringify({ object: 'list', data: [...this.served].map((id) => ({ id })) }));
        if (req.url === '/v1/load_lora_adapter') {
          if (this.failLoad) return reply(this.failLoad.status, this.failLoad.body);
          this.served.add(body.lora_name);
          return reply(200, `Success: LoRA adapter '${body.lora_name}' added successfully.`, 'text/plain');
        }
        if (req.url === '/v1/unload_lora_adapter') {
          if (this.failUnload && this.failUnload.name === body.lora_name) return reply(this.failUnload.status, this.failUnload.body);
          if (!this.served.delete(body.lora_name)) return reply(404, JSON.stringify({ object: 'error', message: `The lora adapter '${body.lora_name}' cannot be found.`, code: 404 }));
          return reply(200, `Success: LoRA adapter '${body.lora_name}' removed successfully.`, 'text/plain');
        }
        reply(404, JSON.stringify({ error: { message: 'no route' } }));
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.baseUrl = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
