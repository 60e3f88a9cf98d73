// Host networking calls Swift cannot make directly (struct ifreq ioctls).
#pragma once

/// Opens (creating if needed) TAP device `name` ("" lets the kernel pick),
/// without packet information headers, non-blocking. Writes the device's
/// name to `actual` (16 bytes). Returns the fd or -errno.
int cnet_tap_open(const char *name, char *actual);

/// Sets interface `name` up. Returns 0 or -errno.
int cnet_link_up(const char *name);

/// Enslaves interface `name` to Linux bridge `bridge`. Returns 0 or -errno.
int cnet_bridge_add(const char *bridge, const char *name);
