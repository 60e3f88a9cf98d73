# A tiny HVM "kernel" that looks at the machine as a guest sees it and says
# what it found on COM1, one line per fact, for the host to check:
#   CPUID leaf subleaf eax ebx ecx edx    (a few leaves)
#   E820 address size type                (the zero page's memory map)
#   CMDLINE text                          (through cmd_line_ptr)
#   RSDP address, then DUMP address length + HEX lines for the RSDP, the
#   XSDT, every table it lists and the DSDT the FADT names
#   READY, then it reads one line from the UART (polling LSR) and answers
#   ECHO with it in upper case
# and powers off through the FADT's sleep control register (SLP_TYP 5, the
# \_S5 value of our DSDT, with SLP_EN). Entered in 64-bit mode by the
# direct boot: identity map, rsi = zero page.
    .intel_syntax noprefix
    .code64
    .text
    .globl _start
_start:
    mov r15, rsi
    lea rsi, [rip + s_hello]
    call puts

    lea r14, [rip + leaves]
1:  mov eax, [r14]
    cmp eax, 0xffffffff
    je 5f
    mov ecx, [r14 + 4]
    cpuid
    mov r8, rax
    mov r9, rbx
    mov r10, rcx
    mov r11, rdx
    lea rsi, [rip + s_cpuid]
    call puts
    mov eax, [r14]
    call hex
    mov eax, [r14 + 4]
    call hex
    mov rax, r8
    call hex
    mov rax, r9
    call hex
    mov rax, r10
    call hex
    mov rax, r11
    call hex
    call newline
    add r14, 8
    jmp 1b

5:  # e820
    movzx r12, byte ptr [r15 + 0x1e8]
    lea r13, [r15 + 0x2d0]
6:  test r12, r12
    jz 7f
    lea rsi, [rip + s_e820]
    call puts
    mov rax, [r13]
    call hex
    mov rax, [r13 + 8]
    call hex
    mov eax, [r13 + 16]
    call hex
    call newline
    add r13, 20
    dec r12
    jmp 6b

7:  # command line
    lea rsi, [rip + s_cmdline]
    call puts
    mov esi, [r15 + 0x228]
    mov ecx, 512
8:  mov dil, [rsi]
    test dil, dil
    jz 9f
    call putc
    inc rsi
    dec ecx
    jnz 8b
9:  call newline

    # ACPI: RSDP, XSDT, every table, the DSDT
    mov rbx, [r15 + 0x70]
    lea rsi, [rip + s_rsdp]
    call puts
    mov rax, rbx
    call hex
    call newline
    mov rsi, rbx
    mov ecx, 36
    call dump
    mov r12, [rbx + 24]             # XsdtAddress
    mov rsi, r12
    mov ecx, [r12 + 4]
    call dump
    mov r13d, [r12 + 4]
    sub r13, 36
    shr r13, 3
    lea r14, [r12 + 36]
    xor ebp, ebp
10: test r13, r13
    jz 12f
    mov rsi, [r14]
    mov ecx, [rsi + 4]
    cmp dword ptr [rsi], 0x50434146 # "FACP"
    jne 11f
    mov rbp, rsi
11: call dump
    add r14, 8
    dec r13
    jmp 10b
12: test rbp, rbp
    jz fail
    mov rsi, [rbp + 140]            # X_DSDT
    mov ecx, [rsi + 4]
    call dump

    # console input
    lea rsi, [rip + s_ready]
    call puts
    lea r12, [rip + line]
    xor r13, r13
13: mov dx, 0x3fd
14: in al, dx
    test al, 1
    jz 14b
    mov dx, 0x3f8
    in al, dx
    cmp al, 10
    je 16f
    cmp al, 13
    je 16f
    cmp al, 'a'
    jb 15f
    cmp al, 'z'
    ja 15f
    sub al, 32
15: cmp r13, 63
    jae 13b
    mov [r12 + r13], al
    inc r13
    jmp 13b
16: mov byte ptr [r12 + r13], 0
    lea rsi, [rip + s_echo]
    call puts
    mov rsi, r12
    call puts
    call newline

    # power off: SLEEP_CONTROL_REG must be a system-I/O address
    cmp byte ptr [rbp + 244], 1
    jne fail
    mov dx, [rbp + 248]
    mov al, 0x34                    # SLP_TYP 5 << 2 | SLP_EN
    out dx, al
fail:
    lea rsi, [rip + s_fail]
    call puts
    cli
17: hlt
    jmp 17b

# dump: rsi = address, ecx = length (at most 64 KiB). Keeps rbx, rbp, r12-r15.
dump:
    and ecx, 0xffff
    push rsi
    push rcx
    mov r8, rsi
    mov r9, rcx
    lea rsi, [rip + s_dump]
    call puts
    mov rax, r8
    call hex
    mov rax, r9
    call hex
    call newline
20: test r9, r9
    jz 23f
    lea rsi, [rip + s_hex]
    call puts
    mov r10, 32
21: test r9, r9
    jz 22f
    test r10, r10
    jz 22f
    movzx eax, byte ptr [r8]
    call byte_hex
    inc r8
    dec r9
    dec r10
    jmp 21b
22: call newline
    jmp 20b
23: pop rcx
    pop rsi
    ret

# hex: " " and rax as 16 hex digits. Keeps everything but rax, rdi, rcx.
hex:
    mov dil, ' '
    call putc
    mov rcx, 16
30: rol rax, 4
    push rax
    and eax, 15
    call nibble
    pop rax
    dec rcx
    jnz 30b
    ret

# byte_hex: al as two hex digits.
byte_hex:
    push rax
    shr eax, 4
    call nibble
    pop rax
    and eax, 15
    call nibble
    ret

nibble:
    cmp al, 10
    jb 31f
    add al, 'a' - 10 - '0'
31: add al, '0'
    mov dil, al
    jmp putc

    .include "serial.inc"

leaves:
    .long 0, 0
    .long 1, 0
    .long 0xb, 0
    .long 0xb, 1
    .long 0x40000000, 0
    .long 0x40000001, 0
    .long 0xffffffff, 0
s_hello:   .asciz "PROBE\n"
s_cpuid:   .asciz "CPUID"
s_e820:    .asciz "E820"
s_cmdline: .asciz "CMDLINE "
s_rsdp:    .asciz "RSDP"
s_dump:    .asciz "DUMP"
s_hex:     .asciz "HEX "
s_ready:   .asciz "READY\n"
s_echo:    .asciz "ECHO "
s_fail:    .asciz "FAILED\n"
line:      .space 64
