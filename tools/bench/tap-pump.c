/* tap-pump FD_A FD_B: move frames between two tap fds (with virtio-net
 * headers) until killed, the way a VM's userspace network backend moves
 * them between its guest and its tap. The benchmark (tools/bench/datapath.mjs)
 * puts it between a tap that mktap bridged on the host side and a tap that
 * mktap created in a launched namespace, so iperf3 traffic crosses
 * namespace -> tap -> pump -> netgrant's tap -> bridge -> host.
 * Like QEMU, it turns on the offloads the guest side accepts (TUNSETOFFLOAD),
 * so large segments cross the pump whole. Built by the benchmark with cc. */
#include <linux/if_tun.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

struct dir { int from, to; };

static void *pump(void *arg) {
  struct dir *d = arg;
  static __thread char buf[65536 + 64];
  for (;;) {
    ssize_t n = read(d->from, buf, sizeof buf);
    if (n <= 0) { perror("tap-pump: read"); exit(111); }
    if (write(d->to, buf, (size_t)n) < 0) { /* a full queue drops, as a NIC would */ }
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 3) { fputs("usage: tap-pump FD_A FD_B\n", stderr); return 100; }
  int a = atoi(argv[1]), b = atoi(argv[2]);
  unsigned off = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
  if (ioctl(a, TUNSETOFFLOAD, off) < 0 || ioctl(b, TUNSETOFFLOAD, off) < 0) { perror("tap-pump: TUNSETOFFLOAD"); return 111; }
  struct dir ab = {a, b}, ba = {b, a};
  pthread_t t;
  if (pthread_create(&t, NULL, pump, &ab) != 0) { fputs("tap-pump: thread\n", stderr); return 111; }
  pump(&ba);
  return 0;
}
