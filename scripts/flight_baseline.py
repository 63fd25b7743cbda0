"""Baseline for `scripts/bench query`: serve an Arrow file from memory with a
pyarrow Flight server on loopback and time DoGet of the whole table from a
client in the same process (one warm-up, then the median of REPEAT, default
1). Prints seconds."""
import statistics
import sys
import threading
import time

import pyarrow as pa
import pyarrow.flight as flight


class Server(flight.FlightServerBase):
    def __init__(self, table):
        super().__init__("grpc://127.0.0.1:0")
        self.table = table

    def do_get(self, context, ticket):
        return flight.RecordBatchStream(self.table)


def main():
    with pa.memory_map(sys.argv[1]) as f:
        table = pa.ipc.open_file(f).read_all()
    table = table.combine_chunks()
    server = Server(table)
    threading.Thread(target=server.serve, daemon=True).start()
    client = flight.connect(f"grpc://127.0.0.1:{server.port}")
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    times = []
    for i in range(repeat + 1):
        t0 = time.perf_counter()
        reader = client.do_get(flight.Ticket(b"t"))
        rows = sum(chunk.data.num_rows for chunk in reader)
        if i > 0:  # the first one warms up
            times.append(time.perf_counter() - t0)
        assert rows == table.num_rows
    server.shutdown()
    print(statistics.median(times))


if __name__ == "__main__":
    main()
