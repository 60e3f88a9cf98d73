// Shims for the parts of linux/kvm.h that Swift cannot import: the request
// numbers are function-like macros and ioctl(2) is variadic.
#ifndef CKVM_H
#define CKVM_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <linux/kvm.h>
#include <errno.h>
#include <sys/mman.h>
#include <signal.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/ioctl.h>

static inline unsigned long ckvm_get_api_version(void) { return KVM_GET_API_VERSION; }
static inline unsigned long ckvm_create_vm(void) { return KVM_CREATE_VM; }
static inline unsigned long ckvm_check_extension(void) { return KVM_CHECK_EXTENSION; }
static inline unsigned long ckvm_get_vcpu_mmap_size(void) { return KVM_GET_VCPU_MMAP_SIZE; }
static inline unsigned long ckvm_get_supported_cpuid(void) { return KVM_GET_SUPPORTED_CPUID; }
static inline unsigned long ckvm_create_vcpu(void) { return KVM_CREATE_VCPU; }
static inline unsigned long ckvm_set_user_memory_region(void) { return KVM_SET_USER_MEMORY_REGION; }
static inline unsigned long ckvm_set_tss_addr(void) { return KVM_SET_TSS_ADDR; }
static inline unsigned long ckvm_set_identity_map_addr(void) { return KVM_SET_IDENTITY_MAP_ADDR; }
static inline unsigned long ckvm_run(void) { return KVM_RUN; }
static inline unsigned long ckvm_get_regs(void) { return KVM_GET_REGS; }
static inline unsigned long ckvm_set_regs(void) { return KVM_SET_REGS; }
static inline unsigned long ckvm_get_sregs(void) { return KVM_GET_SREGS; }
static inline unsigned long ckvm_set_sregs(void) { return KVM_SET_SREGS; }
static inline unsigned long ckvm_get_msrs(void) { return KVM_GET_MSRS; }
static inline unsigned long ckvm_set_msrs(void) { return KVM_SET_MSRS; }
static inline unsigned long ckvm_set_cpuid2(void) { return KVM_SET_CPUID2; }
static inline unsigned long ckvm_get_fpu(void) { return KVM_GET_FPU; }
static inline unsigned long ckvm_set_fpu(void) { return KVM_SET_FPU; }
static inline unsigned long ckvm_get_tsc_khz(void) { return KVM_GET_TSC_KHZ; }
static inline unsigned long ckvm_get_dirty_log(void) { return KVM_GET_DIRTY_LOG; }
static inline unsigned long ckvm_create_irqchip(void) { return KVM_CREATE_IRQCHIP; }
static inline unsigned long ckvm_get_vcpu_events(void) { return KVM_GET_VCPU_EVENTS; }
static inline unsigned long ckvm_set_vcpu_events(void) { return KVM_SET_VCPU_EVENTS; }
static inline unsigned long ckvm_create_pit2(void) { return KVM_CREATE_PIT2; }
static inline unsigned long ckvm_irq_line(void) { return KVM_IRQ_LINE; }
static inline unsigned long ckvm_get_xcrs(void) { return KVM_GET_XCRS; }
static inline unsigned long ckvm_set_xcrs(void) { return KVM_SET_XCRS; }
static inline unsigned long ckvm_kvmclock_ctrl(void) { return KVM_KVMCLOCK_CTRL; }
static inline unsigned long ckvm_get_xsave(void) { return KVM_GET_XSAVE; }
static inline unsigned long ckvm_set_xsave(void) { return KVM_SET_XSAVE; }

/// The vCPU state an HVM save image carries besides registers, FPU and
/// MSRs: each a fixed-size kernel structure moved whole by a GET/SET pair.
enum ckvm_vcpu_state {
    CKVM_VCPU_XCRS = 1, CKVM_VCPU_LAPIC = 2, CKVM_VCPU_MP_STATE = 3,
    CKVM_VCPU_EVENTS = 4, CKVM_VCPU_DEBUGREGS = 5, CKVM_VCPU_SREGS = 6, CKVM_VCPU_REGS = 7,
};
static inline unsigned long ckvm_vcpu_state_size(int k) {
    switch (k) {
    case CKVM_VCPU_XCRS: return sizeof(struct kvm_xcrs);
    case CKVM_VCPU_LAPIC: return sizeof(struct kvm_lapic_state);
    case CKVM_VCPU_MP_STATE: return sizeof(struct kvm_mp_state);
    case CKVM_VCPU_EVENTS: return sizeof(struct kvm_vcpu_events);
    case CKVM_VCPU_DEBUGREGS: return sizeof(struct kvm_debugregs);
    case CKVM_VCPU_SREGS: return sizeof(struct kvm_sregs);
    case CKVM_VCPU_REGS: return sizeof(struct kvm_regs);
    default: return 0;
    }
}
static inline unsigned long ckvm_vcpu_state_request(int k, int set) {
    switch (k) {
    case CKVM_VCPU_XCRS: return set ? KVM_SET_XCRS : KVM_GET_XCRS;
    case CKVM_VCPU_LAPIC: return set ? KVM_SET_LAPIC : KVM_GET_LAPIC;
    case CKVM_VCPU_MP_STATE: return set ? KVM_SET_MP_STATE : KVM_GET_MP_STATE;
    case CKVM_VCPU_EVENTS: return set ? KVM_SET_VCPU_EVENTS : KVM_GET_VCPU_EVENTS;
    case CKVM_VCPU_DEBUGREGS: return set ? KVM_SET_DEBUGREGS : KVM_GET_DEBUGREGS;
    case CKVM_VCPU_SREGS: return set ? KVM_SET_SREGS : KVM_GET_SREGS;
    case CKVM_VCPU_REGS: return set ? KVM_SET_REGS : KVM_GET_REGS;
    default: return 0;
    }
}
/// The VM-wide state: the two PICs and the I/O APIC (one kvm_irqchip
/// each, told apart by chip_id), the PIT and kvm-clock.
enum ckvm_vm_state {
    CKVM_VM_PIC_MASTER = 1, CKVM_VM_PIC_SLAVE = 2, CKVM_VM_IOAPIC = 3, CKVM_VM_PIT = 4, CKVM_VM_CLOCK = 5,
};
static inline unsigned long ckvm_vm_state_size(int k) {
    switch (k) {
    case CKVM_VM_PIC_MASTER: case CKVM_VM_PIC_SLAVE: case CKVM_VM_IOAPIC: return sizeof(struct kvm_irqchip);
    case CKVM_VM_PIT: return sizeof(struct kvm_pit_state2);
    case CKVM_VM_CLOCK: return sizeof(struct kvm_clock_data);
    default: return 0;
    }
}
/// GET or SET of VM state `k` through `buf` (ckvm_vm_state_size bytes).
static inline int ckvm_vm_state_ioctl(int vmfd, int k, int set, void *buf) {
    switch (k) {
    case CKVM_VM_PIC_MASTER: case CKVM_VM_PIC_SLAVE: case CKVM_VM_IOAPIC:
        ((struct kvm_irqchip *)buf)->chip_id = k == CKVM_VM_PIC_MASTER ? KVM_IRQCHIP_PIC_MASTER
            : k == CKVM_VM_PIC_SLAVE ? KVM_IRQCHIP_PIC_SLAVE : KVM_IRQCHIP_IOAPIC;
        return ioctl(vmfd, set ? KVM_SET_IRQCHIP : KVM_GET_IRQCHIP, buf);
    case CKVM_VM_PIT: return ioctl(vmfd, set ? KVM_SET_PIT2 : KVM_GET_PIT2, buf);
    case CKVM_VM_CLOCK: return ioctl(vmfd, set ? KVM_SET_CLOCK : KVM_GET_CLOCK, buf);
    default: errno = EINVAL; return -1;
    }
}
/// kvm-clock's value (ns) in a kvm_clock_data; setting it clears the flags
/// (KVM then takes the value as now's).
static inline uint64_t ckvm_clock_data_value(const void *buf) { return ((const struct kvm_clock_data *)buf)->clock; }
static inline void ckvm_clock_data_set_value(void *buf, uint64_t ns) {
    struct kvm_clock_data *c = (struct kvm_clock_data *)buf;
    c->clock = ns;
    c->flags = 0;
}
/// The MSRs KVM saves and restores for a vCPU (KVM_GET_MSR_INDEX_LIST on
/// /dev/kvm): up to `capacity` indices into `out`; returns how many, or -1.
static inline int ckvm_msr_index_list(int kvmfd, uint32_t *out, uint32_t capacity) {
    struct { struct kvm_msr_list list; uint32_t indices[1024]; } l;
    l.list.nmsrs = capacity > 1024 ? 1024 : capacity;
    if (ioctl(kvmfd, KVM_GET_MSR_INDEX_LIST, &l) < 0) return -1;
    for (uint32_t i = 0; i < l.list.nmsrs; i++) out[i] = l.list.indices[i];
    return (int)l.list.nmsrs;
}

/// Whether the 4 KiB page at p is all zero (save skips such pages; C so a
/// debug build scans guest memory at memory speed too).
static inline int ckvm_page_is_zero(const void *p) {
    const uint64_t *w = (const uint64_t *)p;
    uint64_t any = 0;
    for (int i = 0; i < 512; i += 8)
        any |= w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7];
    return any == 0;
}

/// ioctl(2) with a pointer argument, non-variadic for Swift.
static inline int ckvm_ioctl_ptr(int fd, unsigned long request, void *arg) {
    return ioctl(fd, request, arg);
}
/// ioctl(2) with an integer argument.
static inline int ckvm_ioctl_int(int fd, unsigned long request, unsigned long arg) {
    return ioctl(fd, request, arg);
}

/// Offsets into struct kvm_run's exit union, so Swift reads them without
/// importing the anonymous unions.
static inline struct kvm_run *ckvm_run_cast(void *p) { return (struct kvm_run *)p; }


// Accessors for kvm_run's anonymous exit union.
static inline uint32_t ckvm_exit_reason(struct kvm_run *r) { return r->exit_reason; }
static inline void ckvm_set_immediate_exit(struct kvm_run *r, uint8_t v) { r->immediate_exit = v; }
/// KVM_CAP_SYNC_REGS: the general registers travel in kvm_run itself.
static inline int ckvm_cap_sync_regs(void) { return KVM_CAP_SYNC_REGS; }
static inline uint64_t ckvm_sync_x86_regs(void) { return KVM_SYNC_X86_REGS; }
static inline void ckvm_set_valid_regs(struct kvm_run *r, uint64_t m) { r->kvm_valid_regs = m; }
static inline void ckvm_mark_dirty_regs(struct kvm_run *r, uint64_t m) { r->kvm_dirty_regs |= m; }
static inline struct kvm_regs *ckvm_sync_regs(struct kvm_run *r) { return &r->s.regs.regs; }
static inline uint8_t ckvm_io_direction(struct kvm_run *r) { return r->io.direction; }
static inline uint8_t ckvm_io_size(struct kvm_run *r) { return r->io.size; }
static inline uint16_t ckvm_io_port(struct kvm_run *r) { return r->io.port; }
static inline uint32_t ckvm_io_count(struct kvm_run *r) { return r->io.count; }
static inline uint64_t ckvm_io_data_offset(struct kvm_run *r) { return r->io.data_offset; }
static inline uint64_t ckvm_mmio_address(struct kvm_run *r) { return r->mmio.phys_addr; }
static inline uint32_t ckvm_mmio_length(struct kvm_run *r) { return r->mmio.len; }
static inline uint8_t ckvm_mmio_is_write(struct kvm_run *r) { return r->mmio.is_write; }
static inline uint8_t *ckvm_mmio_data(struct kvm_run *r) { return r->mmio.data; }
static inline uint32_t ckvm_internal_suberror(struct kvm_run *r) { return r->internal.suberror; }
static inline uint32_t ckvm_internal_ndata(struct kvm_run *r) { return r->internal.ndata; }
static inline uint64_t ckvm_internal_data(struct kvm_run *r, uint32_t i) { return i < 16 ? r->internal.data[i] : 0; }
static inline uint64_t ckvm_fail_entry_reason(struct kvm_run *r) { return r->fail_entry.hardware_entry_failure_reason; }
static inline uint32_t ckvm_system_event_type(struct kvm_run *r) { return r->system_event.type; }
static inline uint32_t ckvm_exception_vector(struct kvm_run *r) { return r->ex.exception; }
static inline uint32_t ckvm_exception_error(struct kvm_run *r) { return r->ex.error_code; }

/// memfd_create(2), which glibc declares only under _GNU_SOURCE.
static inline int ckvm_memfd_create(const char *name) { return memfd_create(name, MFD_CLOEXEC); }

#include <stdio.h>
/// Line-buffers stdout (Swift 6 cannot touch the C global directly).
static inline void ckvm_line_buffer_stdout(void) { setvbuf(stdout, NULL, _IOLBF, 0); }
static inline void ckvm_flush_stdout(void) { fflush(stdout); }

#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <x86intrin.h>

static inline uint64_t ckvm_rdtsc(void) { return __rdtsc(); }
static inline int ckvm_gettid(void) { return (int)syscall(SYS_gettid); }
static inline unsigned long ckvm_set_signal_mask_request(void) { return KVM_SET_SIGNAL_MASK; }

/// KVM_SET_SIGNAL_MASK: the signal mask in force while the vCPU runs guest code.
static inline int ckvm_set_signal_mask(int vcpu_fd, const sigset_t *mask) {
    char buf[sizeof(struct kvm_signal_mask) + 8];
    struct kvm_signal_mask *m = (struct kvm_signal_mask *)buf;
    m->len = 8;
    __builtin_memcpy(m->sigset, mask, 8);
    return ioctl(vcpu_fd, KVM_SET_SIGNAL_MASK, m);
}

/// A POSIX timer that sends `signo` to thread `tid` on expiry.
static inline int ckvm_thread_timer_create(int tid, int signo, timer_t *out) {
    struct sigevent ev;
    __builtin_memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = signo;
    ev._sigev_un._tid = tid;
    return timer_create(CLOCK_MONOTONIC, &ev, out);
}

/// Arms `t` for absolute CLOCK_MONOTONIC time `ns` (0 disarms).
static inline int ckvm_timer_arm_absolute(timer_t t, uint64_t ns) {
    struct itimerspec its;
    __builtin_memset(&its, 0, sizeof its);
    its.it_value.tv_sec = ns / 1000000000ull;
    its.it_value.tv_nsec = ns % 1000000000ull;
    return timer_settime(t, ns ? TIMER_ABSTIME : 0, &its, NULL);
}

/// Consumes a pending `signo` without blocking (after KVM_RUN returned EINTR).
static inline int ckvm_consume_signal(int signo, long timeout_ns) {
    sigset_t set; sigemptyset(&set); sigaddset(&set, signo);
    struct timespec ts = { timeout_ns / 1000000000l, timeout_ns % 1000000000l };
    return sigtimedwait(&set, NULL, &ts);
}

static inline void ckvm_block_signal(int signo) {
    sigset_t set; sigemptyset(&set); sigaddset(&set, signo);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static inline int ckvm_unblocked_mask_without(int signo, sigset_t *out) {
    pthread_sigmask(SIG_SETMASK, NULL, out);
    return sigdelset(out, signo);
}

static inline uint64_t ckvm_monotonic_ns(void) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
static inline uint64_t ckvm_realtime_ns(void) {
    struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/// Atomic read-modify-write on guest memory the guest updates concurrently
/// (event bitmaps, upcall flags).
static inline uint64_t ckvm_atomic_or64(void *p, uint64_t v) { return __atomic_fetch_or((uint64_t *)p, v, __ATOMIC_SEQ_CST); }
static inline uint64_t ckvm_atomic_and64(void *p, uint64_t v) { return __atomic_fetch_and((uint64_t *)p, v, __ATOMIC_SEQ_CST); }
static inline uint8_t ckvm_atomic_xchg8(void *p, uint8_t v) { return __atomic_exchange_n((uint8_t *)p, v, __ATOMIC_SEQ_CST); }
static inline uint64_t ckvm_atomic_cmpxchg64(void *p, uint64_t expected, uint64_t desired) {
    __atomic_compare_exchange_n((uint64_t *)p, &expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return expected;
}
static inline uint32_t ckvm_atomic_cmpxchg32(void *p, uint32_t expected, uint32_t desired) {
    __atomic_compare_exchange_n((uint32_t *)p, &expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return expected;
}
static inline uint16_t ckvm_atomic_and16(void *p, uint16_t v) { return __atomic_fetch_and((uint16_t *)p, v, __ATOMIC_SEQ_CST); }
static inline uint32_t ckvm_load_acquire32(const void *p) { return __atomic_load_n((const uint32_t *)p, __ATOMIC_ACQUIRE); }
static inline void ckvm_store_release32(void *p, uint32_t v) { __atomic_store_n((uint32_t *)p, v, __ATOMIC_RELEASE); }
static inline void ckvm_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

#include <sys/eventfd.h>
/// An eventfd for wake-ups (and, later, KVM's irqfd and ioeventfd).
static inline int ckvm_eventfd(void) { return eventfd(0, EFD_CLOEXEC); }

/// KVM_IOEVENTFD: a guest write of `len` bytes at guest-physical `addr`
/// signals eventfd `fd` inside KVM, without an exit to the VMM (virtio
/// queue notifications). `deassign` removes the same binding.
static inline int ckvm_ioeventfd(int vm_fd, uint64_t addr, uint32_t len, int fd, int deassign) {
    struct kvm_ioeventfd e;
    __builtin_memset(&e, 0, sizeof e);
    e.addr = addr;
    e.len = len;
    e.fd = fd;
    e.flags = deassign ? KVM_IOEVENTFD_FLAG_DEASSIGN : 0;
    return ioctl(vm_fd, KVM_IOEVENTFD, &e);
}

/// KVM_SIGNAL_MSI: delivers one message-signalled interrupt through the
/// in-kernel local APICs. > 0 delivered, 0 blocked by the guest, < 0 error.
static inline int ckvm_signal_msi(int vm_fd, uint64_t address, uint32_t data) {
    struct kvm_msi m;
    __builtin_memset(&m, 0, sizeof m);
    m.address_lo = (uint32_t)address;
    m.address_hi = (uint32_t)(address >> 32);
    m.data = data;
    return ioctl(vm_fd, KVM_SIGNAL_MSI, &m);
}

#include <sys/random.h>
/// getrandom(2) for device models (virtio-rng); Glibc's module map may not export it.
static inline long ckvm_getrandom(void *buf, unsigned long len) { return getrandom(buf, len, 0); }

#include <cpuid.h>
static inline void ckvm_cpuid(uint32_t leaf, uint32_t sub, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d) {
    __cpuid_count(leaf, sub, *a, *b, *c, *d);
}

static inline int ckvm_interrupt(int vcpu_fd, uint32_t vector) {
    struct kvm_interrupt irq = { .irq = vector };
    return ioctl(vcpu_fd, KVM_INTERRUPT, &irq);
}

#include <sys/epoll.h>
#include <sys/socket.h>
/// epoll for device models that wait on many host sockets (virtio-vsock).
/// struct epoll_event is packed on x86-64: Swift sees only plain values.
static inline int ckvm_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }
static inline int ckvm_epoll_ctl(int ep, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event e;
    e.events = events;
    e.data.u64 = data;
    return epoll_ctl(ep, op, fd, &e);
}
static inline int ckvm_epoll_add(void) { return EPOLL_CTL_ADD; }
static inline int ckvm_epoll_mod(void) { return EPOLL_CTL_MOD; }
static inline int ckvm_epoll_del(void) { return EPOLL_CTL_DEL; }
/// Waits up to `timeout_ms` for at most `max` events, each as its events and data.
static inline int ckvm_epoll_wait(int ep, uint32_t *events, uint64_t *data, int max, int timeout_ms) {
    struct epoll_event e[32];
    if (max > 32) max = 32;
    int n = epoll_wait(ep, e, max, timeout_ms);
    for (int i = 0; i < n; i++) { events[i] = e[i].events; data[i] = e[i].data.u64; }
    return n;
}
/// accept4(2): a non-blocking, close-on-exec connection (Glibc's module map may not export it).
static inline int ckvm_accept_nonblocking(int fd) {
    return accept4(fd, 0, 0, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

#endif
