// Xen's public x86-64 PV ABI, from the headers Debian's libxen-dev installs
// under /usr/include/xen. Only definitions are used; no Xen code is linked.
#ifndef CXEN_H
#define CXEN_H
#ifndef __XEN_INTERFACE_VERSION__
#define __XEN_INTERFACE_VERSION__ 0x00040e00
#endif
#include <stdint.h>
#include <xen/xen.h>
#include <xen/arch-x86/xen.h>
#include <xen/event_channel.h>
#include <xen/grant_table.h>
#include <xen/memory.h>
#include <xen/vcpu.h>
#include <xen/sched.h>
#include <xen/callback.h>
#include <xen/physdev.h>
#include <xen/version.h>
#include <xen/features.h>
#include <xen/elfnote.h>
#include <xen/io/console.h>
#include <xen/io/xs_wire.h>
#include <xen/errno.h>
#endif
