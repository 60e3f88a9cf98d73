# A tiny HVM "kernel" that says BOOT on COM1 and resets the machine through
# the i8042 (command 0xFE pulses the CPU reset line), as an old kernel would.
    .intel_syntax noprefix
    .code64
    .text
    .globl _start
_start:
    lea rsi, [rip + s_boot]
1:  mov dx, 0x3fd
2:  in al, dx
    test al, 0x20
    jz 2b
    mov al, [rsi]
    test al, al
    jz 3f
    mov dx, 0x3f8
    out dx, al
    inc rsi
    jmp 1b
3:  mov al, 0xfe
    out 0x64, al
    cli
4:  hlt
    jmp 4b
s_boot: .asciz "BOOT\n"
