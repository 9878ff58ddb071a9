/**
 * The two shell scripts that run inside the guest. Both run under the initramfs busybox.
 *
 * Stage 1 (/init in the initramfs): load the 9p/overlay modules, mount the host root
 * read-only with a tmpfs overlay on top, mount the writable results share at the same
 * absolute path it has on the host, then switch_root.
 *
 * Stage 2 (in the new root): bring up lo, load the run's modules, run the job script
 * from the results share, write its exit status there and power off.
 *
 * The kernel passes `name=value` command-line words without a dot to init as environment
 * variables: `veilres` (results path) comes in that way.
 */
export const STAGE1 = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /usr/bin /usr/sbin /sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
die() { echo "veil-lane stage1: $*"; poweroff -f; }
while read -r ko; do
  insmod "$ko" || die "insmod $ko failed"
done < /modules.list
[ -n "$veilres" ] || die "no veilres= on the kernel command line"
mkdir -p /lower /upper /newroot
mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose hostroot /lower || die "mount hostroot"
mount -t tmpfs -o mode=0755 tmpfs /upper || die "mount tmpfs"
mkdir -p /upper/data /upper/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work /newroot || die "mount overlay"
for d in proc sys dev; do mount --move /$d /newroot/$d || die "move /$d"; done
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /newroot/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm
# /tmp stays on the overlay (host files visible, writes private to the guest): a checkout under
# /tmp, as a CI clone may be, must be reachable at the same path inside the guest.
mount -t tmpfs -o mode=0755 tmpfs /newroot/run
mount -t bpf bpf /newroot/sys/fs/bpf
mkdir -p "/newroot$veilres"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 results "/newroot$veilres" || die "mount results"
mkdir -p /newroot/run/veil
cp /bin/busybox /newroot/run/veil/busybox
cp /stage2 /newroot/run/veil/stage2
exec switch_root /newroot /run/veil/busybox sh /run/veil/stage2
die "switch_root failed"
`;

export const STAGE2 = `B=/run/veil/busybox
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
$B hostname veil-lane
$B ip link set lo up
. "$veilres/job.env"
: > "$veilres/modules-missing"
for m in $VEIL_MODULES; do
  modprobe "$m" 2>/dev/null || echo "$m" >> "$veilres/modules-missing"
done
echo "veil-lane: guest ready ($($B uname -r))"
/bin/sh "$veilres/job.sh" < /dev/null
echo $? > "$veilres/exit-code.tmp"
$B mv "$veilres/exit-code.tmp" "$veilres/exit-code"
$B sync
$B poweroff -f
`;
