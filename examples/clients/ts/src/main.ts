// Calls chatplane with the generated TypeScript clients (gen/ts) over Connect's gRPC
// transport: CreateProject, CompleteChat and StreamChat, once straight to the gRPC server
// and once through the Envoy gateway (which passes native gRPC through on its HTTP port).
//
//   npm ci && npm run build
//   CHATPLANE_API_KEY=abl_sk-... node dist/examples/clients/ts/src/main.js \
//     --grpc 127.0.0.1:50051 --envoy http://127.0.0.1:8080
//
// Each call prints one JSON line on stdout. Any failure is printed on stderr and the
// exit status is 1.
import { parseArgs } from "node:util";

import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import {
  ChatService,
  type CompleteChatRequestSchema,
} from "../../../../gen/ts/chatplane/chat/v1/chat_service_pb.js";
import { ProjectService } from "../../../../gen/ts/chatplane/project/v1/project_service_pb.js";

interface Options {
  targets: Array<[via: string, baseUrl: string]>;
  apiKey: string;
  model: string;
  message: string;
  timeoutMs: number;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      grpc: { type: "string", default: process.env.CHATPLANE_GRPC_ADDR ?? "" },
      envoy: { type: "string", default: process.env.CHATPLANE_ENVOY_URL ?? "" },
      "api-key": { type: "string", default: process.env.CHATPLANE_API_KEY ?? "" },
      model: { type: "string", default: process.env.CHATPLANE_MODEL ?? "" },
      message: { type: "string", default: "Say hello from TypeScript." },
      "timeout-ms": { type: "string", default: "30000" },
    },
    strict: true,
  });
  const targets: Array<[string, string]> = [];
  if (values.grpc) targets.push(["grpc", baseUrl(values.grpc)]);
  if (values.envoy) targets.push(["envoy", baseUrl(values.envoy)]);
  if (targets.length === 0) throw new Error("give --grpc HOST:PORT and/or --envoy URL");
  if (!values["api-key"]) throw new Error("give --api-key or set CHATPLANE_API_KEY");
  const timeoutMs = Number(values["timeout-ms"]);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new Error("bad --timeout-ms");
  return {
    targets,
    apiKey: values["api-key"],
    model: values.model,
    message: values.message,
    timeoutMs,
  };
}

// "127.0.0.1:50051" or "http://127.0.0.1:50051": both are plaintext HTTP/2 (h2c).
function baseUrl(address: string): string {
  return /^https?:\/\//.test(address) ? address : `http://${address}`;
}

function print(record: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

async function run(via: string, url: string, opts: Options): Promise<void> {
  // The API key goes in the `authorization` metadata of every call.
  const auth: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${opts.apiKey}`);
    return next(req);
  };
  const transport = createGrpcTransport({
    baseUrl: url,
    interceptors: [auth],
    defaultTimeoutMs: opts.timeoutMs,
  });
  const projects = createClient(ProjectService, transport);
  const chat = createClient(ChatService, transport);

  const created = await projects.createProject({
    name: `ts-client-${via}`,
    description: "Created by examples/clients/ts",
  });
  const projectId = created.project?.id ?? "";
  if (!created.success || !projectId) throw new Error("CreateProject returned no project");
  print({ via, call: "CreateProject", projectId, name: created.project?.name });

  const request: MessageInitShape<typeof CompleteChatRequestSchema> = {
    projectId,
    modelId: opts.model,
    // content is a google.protobuf.Value: a string here (it may also be a list of parts).
    messages: [{ role: "user", content: { kind: { case: "stringValue", value: opts.message } } }],
  };

  const completion = await chat.completeChat(request);
  print({
    via,
    call: "CompleteChat",
    content: completion.content,
    model: completion.model,
    finishReason: completion.finishReason,
    inputTokens: completion.usage?.inputTokens,
    outputTokens: completion.usage?.outputTokens,
  });

  // Events arrive in order: metadata, text deltas (and tool calls), usage, complete.
  const deltas: string[] = [];
  const events: string[] = [];
  let model = "";
  let totalTokens: number | undefined;
  for await (const response of chat.streamChat(request)) {
    const event = response.event;
    if (event.case === undefined) throw new Error("StreamChat sent an empty event");
    events.push(event.case);
    if (event.case === "metadata") model = event.value.modelId;
    else if (event.case === "textDelta") deltas.push(event.value.delta);
    else if (event.case === "complete") totalTokens = event.value.totalTokens;
    else if (event.case === "error") throw new Error(`StreamChat failed: ${event.value.error}`);
  }
  if (events[0] !== "metadata" || events.at(-1) !== "complete") {
    throw new Error(`StreamChat events out of order: ${events.join(",")}`);
  }
  print({ via, call: "StreamChat", model, deltas, text: deltas.join(""), totalTokens });
}

async function main(): Promise<void> {
  const opts = options();
  for (const [via, url] of opts.targets) {
    await run(via, url, opts);
  }
}

main().catch((err: unknown) => {
  if (err instanceof ConnectError) {
    process.stderr.write(`gRPC error: ${Code[err.code]} (${err.code}): ${err.rawMessage}\n`);
  } else {
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  }
  process.exitCode = 1;
});
