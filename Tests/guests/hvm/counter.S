# A tiny HVM "kernel" that counts: a busy loop (no exits) between lines
#   COUNT hhhh                              (the count, 4 hex digits)
# on COM1, for the pause test: while the domain is paused no line comes and
# the vCPU thread uses no CPU; after unpause the count goes on from where it
# stopped. Powers off (ACPI S5) after COUNT 0040. Entered in 64-bit mode by
# the direct boot.
    .intel_syntax noprefix
    .code64
    .text
    .globl _start

    .set LAST, 0x40
    .set SPIN, 200000               # busy-loop rounds between lines

_start:
    xor ebx, ebx
count:
    mov ecx, SPIN
1:  dec ecx
    jnz 1b
    inc ebx
    lea rsi, [rip + s_count]
    call puts
    mov r8d, 4                      # four hex digits of bx, high first
2:  rol bx, 4
    mov eax, ebx
    and eax, 0xf
    lea rsi, [rip + hex]
    mov dil, [rsi + rax]
    call putc
    dec r8d
    jnz 2b
    call newline
    cmp ebx, LAST
    jb count
    mov dx, 0x600                   # SLP_TYP 5 | SLP_EN: power off
    mov al, (5 << 2) | 0x20
    out dx, al
3:  cli
    hlt
    jmp 3b

    .include "serial.inc"

s_count: .asciz "COUNT "
hex:     .ascii "0123456789abcdef"
