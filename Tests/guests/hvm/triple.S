# A tiny HVM "kernel" that triple-faults: with an empty IDT, ud2's #UD
# cannot be delivered, nor can the #DF that follows, and the CPU shuts down.
# r12 carries a mark the register dump must show.
    .intel_syntax noprefix
    .code64
    .text
    .globl _start
_start:
    mov r12, 0x7e57ab1e
    lidt [rip + empty_idt]
    ud2
empty_idt:
    .word 0
    .quad 0
