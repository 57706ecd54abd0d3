#!/usr/bin/python3
# A hostile lessee: does to the tap fd it inherited what the kernel lets any
# fd holder do with no capability, then holds it or exits.
#
#   hostile-tap.py FD ACTION...
#
# ACTION: persist | owner=UID | group=GID | mac=XX:XX:XX:XX:XX:XX | detach
#         | hold=SECONDS | report (prints "ok ACTION" or "err ACTION errno"
#         for each action, then "done")
import fcntl, os, struct, sys, time

TUNSETPERSIST = 0x400454CB
TUNSETOWNER = 0x400454CC
TUNSETGROUP = 0x400454CE
TUNSETQUEUE = 0x400454D9
SIOCSIFHWADDR = 0x8924
IFF_DETACH_QUEUE = 0x0400
ARPHRD_ETHER = 1

fd = int(sys.argv[1])
for action in sys.argv[2:]:
    key, _, val = action.partition('=')
    try:
        if key == 'persist':
            fcntl.ioctl(fd, TUNSETPERSIST, 1)
        elif key == 'owner':
            fcntl.ioctl(fd, TUNSETOWNER, int(val))
        elif key == 'group':
            fcntl.ioctl(fd, TUNSETGROUP, int(val))
        elif key == 'mac':
            hw = bytes(int(b, 16) for b in val.split(':'))
            fcntl.ioctl(fd, SIOCSIFHWADDR, struct.pack('16sH6s', b'', ARPHRD_ETHER, hw).ljust(40, b'\0'))
        elif key == 'detach':
            fcntl.ioctl(fd, TUNSETQUEUE, struct.pack('16sH', b'', IFF_DETACH_QUEUE).ljust(40, b'\0'))
        elif key == 'hold':
            time.sleep(float(val))
            continue
        else:
            print('unknown action', action, flush=True)
            sys.exit(2)
        print('ok', action, flush=True)
    except OSError as e:
        print('err', action, e.errno, flush=True)
print('done', flush=True)
