# A tiny HVM "kernel" that waits for the ACPI power button, as a guest OS's
# GED and button drivers do, for the shutdown test: it routes the Generic
# Event Device's interrupt (I/O APIC input 16, edge, active high: the DSDT's
# GED0 _CRS) to vector 0x41 of its own IDT, prints READY and sleeps in hlt.
# On the interrupt it reads the power button status register (port 0x603,
# the GED's PBST), clears it (write 1 to clear), prints POWER BUTTON and
# powers off (ACPI S5). An interrupt without the bit set prints SPURIOUS
# EVENT and goes back to sleep.
    .intel_syntax noprefix
    .code64
    .text
    .globl _start

    .set VECTOR, 0x41
    .set IOAPIC, 0xfec00000
    .set GSI, 16

_start:
    lea rdi, [rip + idt]
    lea rax, [rip + event]
    mov ecx, VECTOR
    call gate
    lea rax, [rip + spurious]
    mov ecx, 0xff
    call gate
    lidt [rip + idtr]

    call x2apic_on

    # I/O APIC redirection entry GSI: fixed, physical, to APIC 0, edge, high, unmasked.
    mov rsi, IOAPIC
    mov dword ptr [rsi], 0x10 + 2 * GSI + 1
    mov dword ptr [rsi + 0x10], 0
    mov dword ptr [rsi], 0x10 + 2 * GSI
    mov dword ptr [rsi + 0x10], VECTOR

    lea rsi, [rip + s_ready]
    call puts
wait:
    sti
    hlt
    jmp wait

event:
    mov dx, 0x603
    in al, dx
    test al, 1
    jz 1f
    mov al, 1                       # write 1 to clear
    out dx, al
    lea rsi, [rip + s_button]
    call puts
    mov dx, 0x600                   # SLP_TYP 5 | SLP_EN: power off
    mov al, (5 << 2) | 0x20
    out dx, al
2:  cli
    hlt
    jmp 2b
1:  lea rsi, [rip + s_spurious]
    call puts
    mov ecx, 0x80b                  # EOI
    xor eax, eax
    xor edx, edx
    wrmsr
    iretq

spurious:
    iretq

    .include "serial.inc"
    .include "idt.inc"

s_ready:    .asciz "READY\n"
s_button:   .asciz "POWER BUTTON\n"
s_spurious: .asciz "SPURIOUS EVENT\n"

    .balign 16
idtr:   .word 256 * 16 - 1
        .quad idt
    .balign 16
idt:    .fill 256 * 16, 1, 0
