#!/usr/bin/env node
// Drives one container lifecycle through berthd from Node.js and prints
// the events it produces. The client is built from proto/ at run time by
// @grpc/proto-loader; the channel is grpc-js's default for a unix socket,
// with no option added.
//
//   (cd examples/node && npm install)
//   node examples/node/lifecycle.js --rootfs /path/to/rootfs \
//       --socket /run/berth/berth.sock

"use strict";

const path = require("path");
const { parseArgs, promisify } = require("util");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const PROTO = path.join(__dirname, "..", "..", "proto");

function load() {
  const definition = protoLoader.loadSync(
    ["berth/v1/containers.proto", "berth/v1/events.proto"],
    { includeDirs: [PROTO], keepCase: true, enums: String, longs: String, defaults: true },
  );
  return grpc.loadPackageDefinition(definition).berth.v1;
}

// The events of `id` as they come, until DESTROY.
function collect(events, id) {
  const stream = events.Subscribe({ containers: [id], since_seq: "0" });
  const seen = [];
  const done = new Promise((resolve, reject) => {
    stream.on("data", (ev) => {
      const action = ev.action.replace(/^ACTION_/, "");
      let extra = "";
      if (ev.signal) extra += ` signal=${ev.signal}`;
      if (ev.exit_code !== undefined && ev.exit_code !== null) extra += ` exit_code=${ev.exit_code}`;
      console.log(`${ev.seq} ${action} ${ev.name}${extra}`);
      seen.push(action);
      if (action === "DESTROY") {
        stream.cancel();
        resolve(seen);
      }
    });
    stream.on("error", (e) => {
      if (e.code !== grpc.status.CANCELLED) reject(e);
    });
  });
  return done;
}

async function main() {
  const { values: args } = parseArgs({
    options: {
      socket: { type: "string", default: "/run/berth/berth.sock" },
      rootfs: { type: "string" },
      name: { type: "string", default: "node-example" },
    },
  });
  if (!args.rootfs) throw new Error("--rootfs is required: a directory with /bin/sleep");
  const v1 = load();
  const target = `unix://${path.resolve(args.socket)}`;
  const credentials = grpc.credentials.createInsecure();
  const containers = new v1.Containers(target, credentials);
  const events = new v1.Events(target, credentials);
  const call = (method, request) => promisify(containers[method].bind(containers))(request);

  const created = await call("Create", {
    name: args.name,
    rootfs: path.resolve(args.rootfs),
    args: ["sleep", "1000"],
    labels: { example: "node" },
  });
  // Every event is journaled: since_seq 0 replays the create event and
  // then streams the rest live, without a gap.
  const lifecycle = collect(events, created.id);
  await call("Start", { id: created.id });
  await call("Pause", { id: args.name });
  await call("Unpause", { id: args.name });
  await call("Stop", { id: args.name, timeout_seconds: 1 });
  const { container } = await call("Inspect", { id: args.name });
  await call("Remove", { id: args.name });
  const seen = await lifecycle;
  containers.close();
  events.close();

  console.log(`exit code ${container.state.exit_code}`);
  const expected = ["CREATE", "START", "PAUSE", "UNPAUSE", "KILL", "KILL", "DIE", "STOP", "DESTROY"];
  if (seen.join() !== expected.join() || container.state.exit_code !== 137) {
    throw new Error(`unexpected lifecycle: ${seen}, exit code ${container.state.exit_code}`);
  }
}

main().catch((e) => {
  console.error(e.message || e);
  process.exit(1);
});
