#!/usr/bin/python3
# The clients of the fairness row (docs/perf.md, issue 12): one uid stalls
# every slot it may and reconnects without end; another uid takes leases.
#
#   stall SOCK K      hold K connections that never send; whenever the
#                     server closes one (over the uid's limit: at once; a
#                     stalled one: at fd-recv's -t), open another at once.
#                     Runs until SIGTERM, then prints {"connects": N}
#   lease SOCK N      N leases one after another: connect, send an empty
#                     request (one fd-recv frame), receive fd-send's message
#                     and its tap fd, check it, close. Prints the latencies
import json, os, selectors, signal, socket, struct, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from importlib.machinery import SourceFileLoader
lc = SourceFileLoader('lease_client', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lease-client.py')).load_module()

REQUEST = struct.pack('>IH', 0, 0)


def stall(path, k):
    sel = selectors.DefaultSelector()
    connects = 0
    stop = False

    def on_term(*_):
        nonlocal stop
        stop = True
    signal.signal(signal.SIGTERM, on_term)

    def one():
        nonlocal connects
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
        except OSError:
            s.close()
            return False
        connects += 1
        sel.register(s, selectors.EVENT_READ)
        return True

    for _ in range(k):
        one()
    while not stop:
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except OSError:
                data = b''
            if not data:
                sel.unregister(s)
                s.close()
        while len(sel.get_map()) < k and not stop:
            if not one():
                time.sleep(0.001)
    print(json.dumps({'connects': connects}))


def lease(path, n):
    ms = []
    for _ in range(n):
        t0 = time.perf_counter()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        fds = []
        try:
            s.connect(path)
            s.sendall(REQUEST)
            fds = lc.recv_message(s)
            ms.append((time.perf_counter() - t0) * 1000)
        finally:
            s.close()
        if len(fds) != 1:
            raise RuntimeError(f'{len(fds)} fds')
        lc.check_tap(fds[0], None)
        for fd in fds:
            os.close(fd)
    print(json.dumps({'ms': ms}))


if __name__ == '__main__':
    mode, path, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    stall(path, count) if mode == 'stall' else lease(path, count)
