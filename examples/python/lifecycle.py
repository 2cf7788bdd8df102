#!/usr/bin/env python3
"""Drive one container lifecycle through berthd from Python and print the
events it produces.

The gRPC stubs are generated from proto/ with grpcio-tools when this runs:

    pip install grpcio grpcio-tools
    python3 examples/python/lifecycle.py --rootfs /path/to/rootfs \
        --socket /run/berth/berth.sock
"""

import argparse
import importlib
import os
import queue
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join(HERE, "..", "..", "proto")


def generate_stubs(out):
    """Compiles proto/berth/v1/*.proto into Python modules under out."""
    from grpc_tools import protoc
    import grpc_tools

    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    for name in ("containers", "events"):
        rc = protoc.main([
            "protoc",
            f"-I{PROTO}",
            f"-I{well_known}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            f"berth/v1/{name}.proto",
        ])
        if rc != 0:
            sys.exit(f"protoc failed on {name}.proto")
    sys.path.insert(0, out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", default="/run/berth/berth.sock")
    parser.add_argument("--rootfs", required=True, help="a directory with /bin/sleep")
    parser.add_argument("--name", default="py-example")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as out:
        generate_stubs(out)
        import grpc
        c = importlib.import_module("berth.v1.containers_pb2")
        cg = importlib.import_module("berth.v1.containers_pb2_grpc")
        e = importlib.import_module("berth.v1.events_pb2")
        eg = importlib.import_module("berth.v1.events_pb2_grpc")

        # grpcio's default channel for a unix socket, no option added.
        channel = grpc.insecure_channel(f"unix://{os.path.abspath(args.socket)}")
        containers = cg.ContainersStub(channel)
        events = eg.EventsStub(channel)

        created = containers.Create(c.CreateRequest(
            name=args.name, rootfs=os.path.abspath(args.rootfs), args=["sleep", "1000"],
            labels={"example": "python"}))

        # Every event is journaled: this subscription replays the create
        # event from the journal (since_seq=0: from the oldest held) and
        # then streams the rest live, without a gap.
        got = queue.Queue()
        stream = events.Subscribe(e.SubscribeRequest(containers=[created.id], since_seq=0))
        ready = threading.Event()

        def pump():
            ready.set()
            try:
                for ev in stream:
                    got.put(ev)
            except grpc.RpcError:
                pass

        threading.Thread(target=pump, daemon=True).start()
        ready.wait()

        containers.Start(c.StartRequest(id=created.id))
        containers.Pause(c.PauseRequest(id=args.name))
        containers.Unpause(c.UnpauseRequest(id=args.name))
        containers.Stop(c.StopRequest(id=args.name, timeout_seconds=1))
        state = containers.Inspect(c.InspectRequest(id=args.name)).container.state
        containers.Remove(c.RemoveRequest(id=args.name))

        seen = []
        while not seen or seen[-1] != "DESTROY":
            ev = got.get(timeout=30)
            action = e.Action.Name(ev.action).removeprefix("ACTION_")
            seen.append(action)
            extra = ""
            if ev.signal:
                extra += f" signal={ev.signal}"
            if ev.HasField("exit_code"):
                extra += f" exit_code={ev.exit_code}"
            print(f"{ev.seq} {action} {ev.name}{extra}")
        stream.cancel()

        print(f"exit code {state.exit_code}")
        expected = ["CREATE", "START", "PAUSE", "UNPAUSE", "KILL", "KILL", "DIE",
                    "STOP", "DESTROY"]
        if seen != expected or state.exit_code != 137:
            sys.exit(f"unexpected lifecycle: {seen}, exit code {state.exit_code}")


if __name__ == "__main__":
    main()
