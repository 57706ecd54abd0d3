#!/usr/bin/python3
# QEMU's side of the bridge helper protocol (net_bridge_run_helper): a
# socketpair, the helper run with --use-vnet --br=BRIDGE --fd=N, one byte
# with SCM_RIGHTS back, the fd taken only on exit 0. Prints
# `tap NAME master BRIDGE[ pinned]` (pinned: a netgrant pin filter at the
# tap's ingress), or `refused RC` and exits 1.
#
#   qemu-helper.py HELPER BRIDGE [--no-env]     (--no-env: the helper gets an empty environment)
import fcntl, socket, subprocess, sys

helper, bridge = sys.argv[1], sys.argv[2]
env = {} if sys.argv[3:] == ['--no-env'] else None
a, b = socket.socketpair()
p = subprocess.Popen([helper, '--use-vnet', '--br=' + bridge, '--fd=%d' % b.fileno()], pass_fds=[b.fileno()], env=env)
b.close()
try:
    msg, fds, flags, addr = socket.recv_fds(a, 1, 1)
except OSError:
    fds = []
rc = p.wait()
if rc != 0 or len(fds) != 1:
    print('refused', rc)
    sys.exit(1)
ifr = fcntl.ioctl(fds[0], 0x800454d2, b'\0' * 40)
name = ifr[:16].rstrip(b'\0').decode()
info = subprocess.run(['ip', '-o', 'link', 'show', name], capture_output=True, text=True).stdout.split()
filters = subprocess.run(['tc', 'filter', 'show', 'dev', name, 'ingress'], capture_output=True, text=True).stdout
print('tap', name, 'master', info[info.index('master') + 1] + (' pinned' if 'netgrant-pin direct-action' in filters else ''))
