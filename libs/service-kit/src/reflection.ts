import * as fs from 'node:fs';
import { ReflectionService } from '@grpc/reflection';
import type { Server } from '@grpc/grpc-js';
import descriptor from 'protobufjs/ext/descriptor';

/**
 * Server reflection (v1 and v1alpha) from a real FileDescriptorSet built by buf. Feeding @grpc/reflection a
 * proto-loader package definition breaks for protos that import other files (grpc/grpc-node#2958): the
 * descriptors lose their dependency lists. Serving the encoded files of the set keeps them whole.
 */
export function addReflection(server: Server, descriptorSetPath: string, serviceNames: string[]): void {
  const set = (descriptor.FileDescriptorSet as unknown as {
    decode(buf: Uint8Array): { file: unknown[] };
  }).decode(fs.readFileSync(descriptorSetPath));
  const fileDescriptorProtos = set.file.map((file) =>
    Buffer.from((descriptor.FileDescriptorProto as unknown as { encode(f: unknown): { finish(): Uint8Array } }).encode(file).finish()),
  );
  // ReflectionService reads `fileDescriptorProtos` off each entry of a package definition; one entry carries all.
  const packageDefinition = { all: { fileDescriptorProtos } } as unknown as ConstructorParameters<typeof ReflectionService>[0];
  new ReflectionService(packageDefinition, { services: serviceNames }).addToServer(server);
}
