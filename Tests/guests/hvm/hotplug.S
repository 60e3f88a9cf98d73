# A tiny HVM "kernel" that takes vCPU hotplug events the way the DSDT's GED
# and CSCN method do, without an AML interpreter: it routes the Generic
# Event Device's I/O APIC input (GSI 16) to an interrupt vector of its own,
# waits for the interrupt with sti; hlt, and on each one walks the CPU
# hotplug register block (0x610: CSEL, status/command, count), printing on
# COM1, for the host to check:
#   HOTPLUG READY nn                       (possible CPUs, from the block)
#   GED                                    (the interrupt came)
#   INSERT cc STATUS ss, ACKED cc STATUS ss (an insert, acknowledged)
#   AP cc UP | AP cc SILENT                (the added CPU, started with
#                                           INIT/SIPI, ran our real-mode code)
#   REMOVE cc STATUS ss, EJECTED cc STATUS ss (a removal, acknowledged, ejected)
#   SCAN DONE
# and powers off after its third scan. Entered in 64-bit mode by the direct
# boot: identity map of 4 GiB (the local APIC and I/O APIC pages included).
    .intel_syntax noprefix
    .code64
    .text
    .globl _start

    .set HOTPLUG, 0x610
    .set LAPIC, 0xfee00000
    .set IOAPIC, 0xfec00000
    .set GSI, 16
    .set VECTOR, 0x30
    .set TRAMPOLINE, 0x3000         # SIPI vector 3: APs start at 0300:0000
    .set AP_FLAGS, 0x3100           # one byte per APIC ID, set by a started AP
    .set SCANS, 3

_start:
    cli
    mov al, 0xff                    # mask both 8259s: only the I/O APIC speaks
    out 0x21, al
    out 0xa1, al

    # IDT: one interrupt gate, for VECTOR.
    lea rax, [rip + ged_interrupt]
    lea rdi, [rip + idt + VECTOR * 16]
    mov [rdi], ax
    mov word ptr [rdi + 2], 0x10    # the boot GDT's code segment
    mov word ptr [rdi + 4], 0x8e00  # present, DPL 0, 64-bit interrupt gate
    shr rax, 16
    mov [rdi + 6], ax
    shr rax, 16
    mov [rdi + 8], eax
    lidt [rip + idtr]

    # Local APIC on (spurious vector 0xff), accepting every priority.
    mov rdi, LAPIC
    mov dword ptr [rdi + 0xf0], 0x1ff
    mov dword ptr [rdi + 0x80], 0

    # I/O APIC pin GSI: fixed delivery of VECTOR to APIC ID 0, edge, active high.
    mov rdi, IOAPIC
    mov dword ptr [rdi], 0x10 + 2 * GSI + 1
    mov dword ptr [rdi + 0x10], 0
    mov dword ptr [rdi], 0x10 + 2 * GSI
    mov dword ptr [rdi + 0x10], VECTOR

    # The APs' real-mode code, where SIPI vector 3 points.
    lea rsi, [rip + ap_start]
    mov rdi, TRAMPOLINE
    mov rcx, offset ap_end - ap_start
    rep movsb

    lea rsi, [rip + s_ready]
    call puts
    mov dx, HOTPLUG + 8
    in eax, dx
    mov r12d, eax                   # possible CPUs
    call byte_hex
    call newline

    xor r14d, r14d                  # scans done
wait:
    sti
    hlt                             # sti's shadow: the interrupt cannot slip in between
    cli
    cmp dword ptr [rip + events], 0
    je wait
    mov dword ptr [rip + events], 0
    lea rsi, [rip + s_ged]
    call puts
    call scan
    lea rsi, [rip + s_done]
    call puts
    inc r14d
    cmp r14d, SCANS
    jb wait
    mov dx, 0x600                   # SLP_TYP 5 | SLP_EN
    mov al, 0x34
    out dx, al
1:  hlt
    jmp 1b

# scan: every CPU's status, as CSCN reads it; acknowledge and act.
scan:
    xor ebx, ebx
10: mov dx, HOTPLUG
    mov eax, ebx
    out dx, eax                     # CSEL
    mov dx, HOTPLUG + 4
    in al, dx
    mov r13b, al
    test r13b, 2
    jz 12f
    lea rsi, [rip + s_insert]
    call report
    mov dx, HOTPLUG + 4
    mov al, 2                       # acknowledge the insert
    out dx, al
    call start_ap
    lea rsi, [rip + s_acked]
    call report_now
12: test r13b, 4
    jz 13f
    lea rsi, [rip + s_remove]
    call report
    mov dx, HOTPLUG + 4
    mov al, 4                       # acknowledge the removal
    out dx, al
    mov al, 8                       # eject
    out dx, al
    lea rsi, [rip + s_ejected]
    call report_now
13: inc ebx
    cmp ebx, r12d
    jb 10b
    ret

# report: rsi's word, CPU bl, STATUS r13b.
report:
    call puts
    mov eax, ebx
    call byte_hex
    lea rsi, [rip + s_status]
    call puts
    mov al, r13b
    call byte_hex
    jmp newline

# report_now: the same with the selected CPU's status read again.
report_now:
    mov dx, HOTPLUG + 4
    in al, dx
    mov r13b, al
    jmp report

# start_ap: INIT, then SIPI (twice, as the MP spec says) to APIC ID bl;
# the AP marks its byte in AP_FLAGS from real mode.
start_ap:
    mov byte ptr [AP_FLAGS + rbx], 0
    mov rdi, LAPIC
    mov eax, ebx
    shl eax, 24
    mov [rdi + 0x310], eax
    mov dword ptr [rdi + 0x300], 0x4500          # INIT, assert
    mov ecx, 1000
20: pause
    dec ecx
    jnz 20b
    mov [rdi + 0x310], eax
    mov dword ptr [rdi + 0x300], 0x4600 + (TRAMPOLINE >> 12)
    mov [rdi + 0x310], eax
    mov dword ptr [rdi + 0x300], 0x4600 + (TRAMPOLINE >> 12)
    mov ecx, 50000000               # wait for its mark (emulated: be patient)
21: cmp byte ptr [AP_FLAGS + rbx], 0
    jne 22f
    pause
    dec ecx
    jnz 21b
    lea rsi, [rip + s_ap]
    call puts
    mov eax, ebx
    call byte_hex
    lea rsi, [rip + s_silent]
    jmp 23f
22: lea rsi, [rip + s_ap]
    call puts
    mov eax, ebx
    call byte_hex
    lea rsi, [rip + s_up]
23: call puts
    ret

ged_interrupt:
    push rdi
    inc dword ptr [rip + events]
    mov rdi, LAPIC
    mov dword ptr [rdi + 0xb0], 0   # EOI
    pop rdi
    iretq

# byte_hex: al as two hex digits.
byte_hex:
    push rax
    shr eax, 4
    and eax, 15
    call nibble
    pop rax
    and eax, 15
nibble:
    cmp al, 10
    jb 31f
    add al, 'a' - 10
    jmp 32f
31: add al, '0'
32: mov dil, al
    jmp putc

    .include "serial.inc"

# The APs' code, copied to TRAMPOLINE: real mode, CS = 0x300. Marks
# AP_FLAGS[APIC ID] and halts with interrupts off for good.
    .code16
ap_start:
    cli
    xor ax, ax
    mov ds, ax
    mov eax, 1
    cpuid
    shr ebx, 24
    mov byte ptr [bx + AP_FLAGS], 1
50: hlt
    jmp 50b
ap_end:
    .code64

s_ready:   .asciz "HOTPLUG READY "
s_ged:     .asciz "GED\n"
s_done:    .asciz "SCAN DONE\n"
s_insert:  .asciz "INSERT "
s_acked:   .asciz "ACKED "
s_remove:  .asciz "REMOVE "
s_ejected: .asciz "EJECTED "
s_status:  .asciz " STATUS "
s_ap:      .asciz "AP "
s_up:      .asciz " UP\n"
s_silent:  .asciz " SILENT\n"

    .balign 16
idtr:
    .word 256 * 16 - 1
    .quad idt
    .balign 4
events:
    .long 0
    .balign 16
idt:
    .fill 256 * 16, 1, 0
