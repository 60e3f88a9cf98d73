// TAP and bridge ioctls (struct ifreq), kept out of the header so that
// Swift never sees linux/if.h beside glibc's net/if.h.
#include "cnet.h"
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <errno.h>

/// Opens (creating if needed) TAP device `name` ("" lets the kernel pick),
/// without packet information headers, non-blocking. Writes the device's
/// name to `actual` (IFNAMSIZ bytes). Returns the fd or -errno.
int cnet_tap_open(const char *name, char *actual) {
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) { int e = errno; close(fd); return -e; }
    memcpy(actual, ifr.ifr_name, IFNAMSIZ);
    return fd;
}

/// Sets interface `name` up. Returns 0 or -errno.
int cnet_link_up(const char *name) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
    if (rc == 0) { ifr.ifr_flags |= IFF_UP; rc = ioctl(s, SIOCSIFFLAGS, &ifr); }
    int e = errno;
    close(s);
    return rc < 0 ? -e : 0;
}

/// Enslaves interface `name` to Linux bridge `bridge`. Returns 0 or -errno.
int cnet_bridge_add(const char *bridge, const char *name) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    int rc = ioctl(s, SIOCGIFINDEX, &ifr);
    if (rc == 0) {
        int index = ifr.ifr_ifindex;
        memset(&ifr, 0, sizeof ifr);
        strncpy(ifr.ifr_name, bridge, IFNAMSIZ - 1);
        ifr.ifr_ifindex = index;
        rc = ioctl(s, SIOCBRADDIF, &ifr);
    }
    int e = errno;
    close(s);
    return rc < 0 ? -e : 0;
}
