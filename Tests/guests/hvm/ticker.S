# A tiny HVM "kernel" that keeps time the way a guest kernel does, for the
# save/restore test: the local APIC timer (x2APIC, periodic, vector 0x40)
# interrupts it every 50 ms through its own IDT, and on each tick it prints
#   TICK hhhh WALL ssssssss.mmm STEAL mmmmmm  (tick count; wall clock, hex
#                                              seconds and hex milliseconds;
#                                              steal time, hex milliseconds)
# on COM1. The wall clock is kvm-clock's: the boot time KVM writes to the
# wall-clock structure plus the pvclock system time read with rdtsc, as
# Linux computes it. Steal is KVM's steal-time record's, as Linux reads it
# for /proc/stat. Between ticks the vCPU sleeps in hlt. Powers off
# (ACPI S5) after TICK 0040. Entered in 64-bit mode by the direct boot.
    .intel_syntax noprefix
    .code64
    .text
    .globl _start

    .set LAST, 0x40
    .set PERIOD, 50000000           # timer counts: 50 ms on KVM's 1 GHz APIC bus, divide by 1
    .set VECTOR, 0x40

_start:
    # IDT gates: the tick and the spurious vector.
    lea rdi, [rip + idt]
    lea rax, [rip + tick]
    mov ecx, VECTOR
    call gate
    lea rax, [rip + spurious]
    mov ecx, 0xff
    call gate
    lidt [rip + idtr]

    # kvm-clock: the system-time structure and the boot wall clock.
    lea rax, [rip + pvti]
    or rax, 1
    mov rdx, rax
    shr rdx, 32
    mov ecx, 0x4b564d01             # MSR_KVM_SYSTEM_TIME_NEW
    wrmsr
    lea rax, [rip + wallclock]
    xor edx, edx
    mov ecx, 0x4b564d00             # MSR_KVM_WALL_CLOCK_NEW
    wrmsr

    # Steal time: the record's address | enabled.
    lea rax, [rip + steal]
    or rax, 1
    xor edx, edx
    mov ecx, 0x4b564d03             # MSR_KVM_STEAL_TIME
    wrmsr

    # x2APIC on, software-enabled, periodic timer.
    call x2apic_on
    mov ecx, 0x83e                  # divide configuration: by 1
    mov eax, 0xb
    wrmsr
    mov ecx, 0x832                  # LVT timer: periodic, VECTOR
    mov eax, (1 << 17) | VECTOR
    wrmsr
    mov ecx, 0x838                  # initial count
    mov eax, PERIOD
    wrmsr

    xor ebx, ebx                    # ticks printed
wait:
    sti
    hlt
    cli
    mov eax, [rip + ticks]
    cmp eax, ebx
    je wait
    inc ebx
    call report
    cmp ebx, LAST
    jb wait
    mov dx, 0x600                   # SLP_TYP 5 | SLP_EN: power off
    mov al, (5 << 2) | 0x20
    out dx, al
1:  cli
    hlt
    jmp 1b

tick:
    push rax
    push rcx
    push rdx
    inc dword ptr [rip + ticks]
    mov ecx, 0x80b                  # EOI
    xor eax, eax
    xor edx, edx
    wrmsr
    pop rdx
    pop rcx
    pop rax
    iretq

spurious:
    iretq

# report: "TICK hhhh WALL ssssssss.mmm" for tick ebx.
report:
    lea rsi, [rip + s_tick]
    call puts
    mov eax, ebx
    mov r8d, 4
    call hexdigits
    lea rsi, [rip + s_wall]
    call puts
    call kvmclock                   # rax = ns since the VM's kvm-clock zero
    mov ecx, [rip + wallclock + 8]  # nsec
    add rax, rcx
    xor edx, edx
    mov rcx, 1000000000
    div rcx                         # rax = seconds, rdx = ns
    mov r9, rdx
    mov ecx, [rip + wallclock + 4]  # sec
    add rax, rcx
    mov r8d, 8
    call hexdigits
    mov dil, '.'
    call putc
    mov rax, r9
    xor edx, edx
    mov rcx, 1000000
    div rcx                         # milliseconds
    mov r8d, 3
    call hexdigits
    lea rsi, [rip + s_steal]
    call puts
1:  mov r10d, [rip + steal + 8]     # version: odd while KVM updates it
    test r10d, 1
    jnz 1b
    mov rax, [rip + steal]
    cmp r10d, [rip + steal + 8]
    jne 1b
    xor edx, edx
    mov rcx, 1000000
    div rcx                         # milliseconds
    mov r8d, 6
    call hexdigits
    jmp newline

# kvmclock: rax = system_time + ((rdtsc - tsc_timestamp) << shift) * mul >> 32.
kvmclock:
1:  mov r10d, [rip + pvti]          # version: odd while KVM updates it
    test r10d, 1
    jnz 1b
    rdtsc
    shl rdx, 32
    or rax, rdx
    sub rax, [rip + pvti + 8]       # tsc_timestamp
    movsx ecx, byte ptr [rip + pvti + 28]
    test ecx, ecx
    js 2f
    shl rax, cl
    jmp 3f
2:  neg ecx
    shr rax, cl
3:  mov ecx, [rip + pvti + 24]      # tsc_to_system_mul
    mul rcx
    shrd rax, rdx, 32
    add rax, [rip + pvti + 16]      # system_time
    cmp r10d, [rip + pvti]
    jne 1b
    ret

# hexdigits: the low r8d hex digits of rax, high first.
hexdigits:
    mov rcx, r8
    shl ecx, 2
    mov rdx, rax
1:  sub ecx, 4
    mov rax, rdx
    shr rax, cl
    and eax, 0xf
    lea rsi, [rip + hex]
    mov dil, [rsi + rax]
    call putc
    test ecx, ecx
    jnz 1b
    ret

    .include "serial.inc"
    .include "idt.inc"

s_tick: .asciz "TICK "
s_wall: .asciz " WALL "
s_steal: .asciz " STEAL "
hex:    .ascii "0123456789abcdef"

    .balign 16
idtr:   .word 256 * 16 - 1
        .quad idt
    .balign 64
pvti:   .fill 32, 1, 0
wallclock: .fill 16, 1, 0
ticks:  .long 0
    .balign 64
steal:  .fill 64, 1, 0
    .balign 16
idt:    .fill 256 * 16, 1, 0
