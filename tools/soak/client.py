# The soak's client: what a tap user runs after
#   s6-ipcclient SOCK fd-recv -s 6 -d 3 -e TAPNAME python3 client.py BRIDGE HOLD_MS [greedy]
# It proves the tap on fd 3 works, says so, holds the lease HOLD_MS, and exits.
# greedy: once it holds the tap it also makes it persistent and gives it to
# root through the fd (TUNSETPERSIST, TUNSETOWNER, TUNSETGROUP: no
# capability needed), so the kernel alone would keep it for ever; the
# lease layer must end it.
# One line on stdout per step: `holding NAME`, then `ok NAME`; on any failure
# `bad: what`, exit 1. Runs as the unprivileged caller, with no capabilities.
import errno
import fcntl
import os
import struct
import sys
import time

TUNGETIFF = 0x800454D2
TUNSETPERSIST = 0x400454CB
TUNSETOWNER = 0x400454CC
TUNSETGROUP = 0x400454CE
IFF_TAP = 0x2
IFF_NO_PI = 0x1000
IFF_UP = 0x1
# The fds a client may hold: stdio, the tap, and s6-ipcclient's socket (6, 7).
ALLOWED_FDS = {0, 1, 2, 3, 6, 7}


def bad(what):
    print(f"bad: {what}", flush=True)
    sys.exit(1)


def sysfs(name, attr):
    with open(f"/sys/class/net/{name}/{attr}") as f:
        return f.read().strip()


def main():
    bridge, hold_ms = sys.argv[1], int(sys.argv[2])
    greedy = sys.argv[3:] == ["greedy"]
    name = os.environ.get("TAPNAME", "")
    # The fd is a tap, the kernel says which one, and it is the one announced.
    ifr = fcntl.ioctl(3, TUNGETIFF, bytes(40))
    got = ifr[:16].split(b"\0", 1)[0].decode()
    flags = struct.unpack_from("=H", ifr, 16)[0]
    if got != name or not flags & IFF_TAP or not flags & IFF_NO_PI:
        bad(f"fd 3 is {got!r} flags {flags:#x}, TAPNAME={name!r}")
    # On the bridge, up, and owned by this caller.
    master = os.path.basename(os.readlink(f"/sys/class/net/{name}/master"))
    if master != bridge:
        bad(f"{name} is on {master!r}, not {bridge!r}")
    if not int(sysfs(name, "flags"), 16) & IFF_UP:
        bad(f"{name} is down")
    if int(sysfs(name, "owner")) != os.getuid():
        bad(f"{name} is owned by {sysfs(name, 'owner')}, not {os.getuid()}")
    # Nothing else leaked into the client.
    extra = {int(fd) for fd in os.listdir("/proc/self/fd")} - ALLOWED_FDS
    extra = {fd for fd in extra if os.path.exists(f"/proc/self/fd/{fd}")}  # minus listdir's own fd
    if extra:
        bad(f"unexpected fds {sorted(extra)}: {[os.readlink(f'/proc/self/fd/{fd}') for fd in sorted(extra)]}")
    # Traffic: a frame written to the fd is received by the interface.
    before = int(sysfs(name, "statistics/rx_packets"))
    frame = b"\xff" * 6 + b"\x02\x00\x00\x50\x4b\x00" + b"\x88\xb5" + b"netgrant soak".ljust(46, b"\0")
    if os.write(3, frame) != len(frame):
        bad("short write to the tap")
    if int(sysfs(name, "statistics/rx_packets")) != before + 1:
        bad(f"{name} did not receive the frame written to its fd")
    if greedy:
        # The lease layer may end the lease at the first of these: then the
        # fd is detached from any device (EBADFD), which is the point.
        for req, arg in ((TUNSETPERSIST, 1), (TUNSETOWNER, 0), (TUNSETGROUP, 0)):
            try:
                fcntl.ioctl(3, req, arg)
            except OSError as e:
                if e.errno != errno.EBADFD:
                    raise
                break
    print(f"holding {name}", flush=True)
    time.sleep(hold_ms / 1000)
    print(f"ok {name}", flush=True)


try:
    main()
except OSError as e:
    bad(f"{e.filename or 'syscall'}: {e.strerror}")
