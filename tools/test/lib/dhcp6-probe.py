#!/usr/bin/python3
# A DHCPv6 client's socket with no DHCP logic: sends the messages it reads
# (one hex line each) from [SRC%IFACE]:546 to [ff02::1:2%IFACE]:547 and
# prints every datagram that comes back (hex, one a line) within WAIT
# seconds of the last send, or until N have come with --expect N. With
# --flood SECONDS it sends them round and round for that long, then prints
# "sent N" and "got M".
#
#   dhcp6-probe.py IFACE SRC WAIT [--flood SECONDS | --expect N] < messages
import socket, sys, time

iface, src, wait = sys.argv[1], sys.argv[2], float(sys.argv[3])
flag, value = (sys.argv[4], float(sys.argv[5])) if len(sys.argv) > 5 else (None, None)
flood = value if flag == "--flood" else None
expect = value if flag == "--expect" else None
msgs = [bytes.fromhex(l.strip()) for l in sys.stdin if l.strip()]
scope = socket.if_nametoindex(iface)
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, scope)
s.bind((src, 546, 0, scope))
dst = ("ff02::1:2", 547, 0, scope)
s.setblocking(False)
got = []

def drain():
    while True:
        try:
            got.append(s.recv(4096))
        except BlockingIOError:
            return

if flood is None:
    for m in msgs:
        s.sendto(m, dst)
else:
    n, t = 0, time.time()
    while time.time() - t < flood:
        for m in msgs:
            try:
                s.sendto(m, dst)
                n += 1
            except BlockingIOError:
                pass
        drain()
    print("sent", n)
end = time.time() + wait
while time.time() < end and (expect is None or len(got) < expect):
    drain()
    time.sleep(0.02)
if flood is None:
    for d in got:
        print(d.hex())
else:
    print("got", len(got))
