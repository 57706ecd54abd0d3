#!/usr/bin/python3
# The client side of the tap lease benchmarks (docs/perf.md rows 2 and 3),
# one process, no process start per lease. Each mode prints one JSON object.
#
#   service SOCK N [drop]     N leases one after another from a netgrant
#                             service (connect, receive fd-send's message
#                             and its fd: "fd in hand"). The client holds
#                             the tap until the server has finished with the
#                             connection, as QEMU holds a lease, so the
#                             device goes when the client lets go; `drop`
#                             closes it at once instead, and the server's
#                             own close may then be the last one and pay
#                             the device teardown
#   concurrent SOCK N C [PID] N leases from C threads at once; with PID, that
#                             process's RSS and open fds after every 1,000
#   helper HELPER BR N        N taps from a QEMU bridge helper, driven the way
#                             QEMU's net_bridge_run_helper drives it:
#                             socketpair, fork/exec HELPER --use-vnet --br=BR
#                             --fd=N, receive one byte + the fd, waitpid
#   iptuntap N                N times `ip tuntap add` then `ip link del`
#
# Every lease is checked after its clock stops: the fd must be a tap
# (TUNGETIFF) and, where a bridge is expected, the device must be on it.
import fcntl, json, os, socket, struct, sys, threading, time

TUNGETIFF = 0x800454D2
IFF_TAP = 0x0002


def tap_of(fd):
    """(name, flags) of the tun/tap device behind fd, or raise."""
    ifr = fcntl.ioctl(fd, TUNGETIFF, b'\0' * 40)
    return ifr[:16].rstrip(b'\0').decode(), struct.unpack('H', ifr[16:18])[0]


def check_tap(fd, bridge):
    name, flags = tap_of(fd)
    if not flags & IFF_TAP:
        raise RuntimeError(f'{name} is not a tap')
    if bridge is not None:
        master = os.path.basename(os.readlink(f'/sys/class/net/{name}/master'))
        if master != bridge:
            raise RuntimeError(f'{name} is on {master}, not {bridge}')
    return name


def recv_message(sock):
    """One fd-send message (4-byte length, 2-byte fd count, payload) and its fds."""
    data, fds, _, _ = socket.recv_fds(sock, 65536, 16)
    while len(data) < 6 or len(data) < 6 + struct.unpack('>I', data[:4])[0]:
        more = sock.recv(65536)
        if not more:
            for fd in fds:
                os.close(fd)
            raise RuntimeError(f'short message ({len(data)} bytes)')
        data += more
    want = struct.unpack('>H', data[4:6])[0]
    if len(fds) != want:
        raise RuntimeError(f'{len(fds)} fds, the header says {want}')
    return fds


def lease_from_service(path, bridge, drop=False):
    """One lease; returns (seconds from connect to fd in hand, tap name)."""
    t0 = time.perf_counter()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    fds = []
    try:
        s.connect(path)
        fds = recv_message(s)
        t1 = time.perf_counter()
        if not drop:
            while s.recv(4096):
                pass
    finally:
        s.close()
    try:
        if len(fds) != 1:
            raise RuntimeError(f'{len(fds)} fds')
        return t1 - t0, check_tap(fds[0], bridge)
    finally:
        for fd in fds:
            os.close(fd)


def lease_from_helper(helper, bridge):
    t0 = time.perf_counter()
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.set_inheritable(b.fileno(), True)
        pid = os.posix_spawn(helper, [helper, '--use-vnet', f'--br={bridge}', f'--fd={b.fileno()}'], os.environ)
        b.close()
        try:
            _, fds, _, _ = socket.recv_fds(a, 1, 1)
        except OSError:
            fds = []
        _, status = os.waitpid(pid, 0)
        t1 = time.perf_counter()
    finally:
        a.close()
        b.close()
    try:
        if os.waitstatus_to_exitcode(status) != 0 or len(fds) != 1:
            raise RuntimeError(f'helper exit {status}, {len(fds)} fds')
        return t1 - t0, check_tap(fds[0], bridge)
    finally:
        for fd in fds:
            os.close(fd)


def run_cmd(argv):
    pid = os.posix_spawnp(argv[0], argv, os.environ)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise RuntimeError(f'{argv} exited {status}')


def lease_iptuntap(i):
    name = f'bip{i % 1000}'
    t0 = time.perf_counter()
    run_cmd(['ip', 'tuntap', 'add', 'dev', name, 'mode', 'tap'])
    run_cmd(['ip', 'link', 'del', name])
    return time.perf_counter() - t0, name


def sequential(n, one):
    lat, names = [], set()
    for i in range(n):
        dt, name = one(i)  # raises unless the lease was checked
        lat.append(dt * 1e3)
        names.add(name)
    return {'ms': lat, 'leases': n, 'checked': len(lat), 'distinct_names': len(names)}


def sample(pid):
    rss = 0
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                rss = int(line.split()[1])
    return {'rss_kb': rss, 'fds': len(os.listdir(f'/proc/{pid}/fd')), 't': time.time()}


def concurrent(path, n, conc, pid, bridge):
    lock = threading.Lock()
    state = {'next': 0, 'done': 0, 'errors': [], 'samples': []}
    if pid:
        state['samples'].append({'leases': 0, **sample(pid)})

    def worker():
        while True:
            with lock:
                if state['next'] >= n:
                    return
                state['next'] += 1
            try:
                lease_from_service(path, bridge)
                ok = True
            except Exception as e:  # counted and reported, never hidden
                ok = False
                err = str(e)
            with lock:
                if not ok:
                    state['errors'].append(err)
                state['done'] += 1
                if pid and state['done'] % 1000 == 0:
                    state['samples'].append({'leases': state['done'], **sample(pid)})

    threads = [threading.Thread(target=worker) for _ in range(conc)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if pid:
        # The last connections' chains may still be closing their fds.
        time.sleep(0.2)
        state['samples'].append({'leases': n, 'settled': True, **sample(pid)})
    return {'leases': n, 'clients': conc, 'seconds': wall, 'per_second': n / wall,
            'errors': len(state['errors']), 'first_errors': state['errors'][:3], 'samples': state['samples']}


def main(argv):
    mode = argv[0]
    bridge = os.environ.get('BENCH_BRIDGE')
    if mode == 'service':
        drop = argv[3:] == ['drop']
        out = sequential(int(argv[2]), lambda i: lease_from_service(argv[1], bridge, drop))
    elif mode == 'concurrent':
        out = concurrent(argv[1], int(argv[2]), int(argv[3]), int(argv[4]) if len(argv) > 4 else 0, bridge)
    elif mode == 'helper':
        out = sequential(int(argv[3]), lambda i: lease_from_helper(argv[1], argv[2]))
    elif mode == 'iptuntap':
        out = sequential(int(argv[1]), lease_iptuntap)
    else:
        raise SystemExit(f'lease-client: unknown mode {mode}')
    json.dump(out, sys.stdout)


if __name__ == '__main__':
    main(sys.argv[1:])
