#!/usr/bin/python3
# The demo's "guest": holds the tap on fd 3 (as the unprivileged user who
# obtained it) and answers ARP and ICMP echo for its address, so that a ping
# from the bridge shows traffic flowing through the tap. Stops after
# answering COUNT echo requests or after TIMEOUT seconds.
import os, select, struct, sys, time

ip = bytes(int(x) for x in sys.argv[1].split('.'))
count = int(sys.argv[2])
mac = bytes.fromhex('02ab' + os.urandom(4).hex())
fd, answered, deadline = 3, 0, time.time() + 20

def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return struct.pack('!H', ~s & 0xffff)

while answered < count and time.time() < deadline:
    if not select.select([fd], [], [], 1)[0]:
        continue
    f = os.read(fd, 65536)
    dst, src, etype = f[:6], f[6:12], f[12:14]
    if etype == b'\x08\x06' and f[38:42] == ip and f[20:22] == b'\x00\x01':  # ARP request for us
        arp = f[14:22] [:6] + b'\x00\x02' + mac + ip + f[22:28] + f[28:32]
        os.write(fd, src + mac + b'\x08\x06' + arp)
    elif etype == b'\x08\x00' and f[30:34] == ip and f[23] == 1 and f[34] == 8:  # ICMP echo request
        ihl = (f[14] & 15) * 4
        icmp = b'\x00\x00' + b'\x00\x00' + f[14 + ihl + 4:]
        icmp = icmp[:2] + csum(icmp) + icmp[4:]
        hdr = bytearray(f[14:14 + ihl]); hdr[12:16], hdr[16:20] = f[30:34], f[26:30]; hdr[10:12] = b'\0\0'
        hdr[10:12] = csum(bytes(hdr))
        os.write(fd, src + mac + b'\x08\x00' + bytes(hdr) + icmp)
        answered += 1
print('   the tap holder (uid %d) answered %d echo requests' % (os.getuid(), answered))
sys.exit(0 if answered == count else 1)
