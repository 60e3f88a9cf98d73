# A tiny HVM "kernel" that plays the virtio-balloon driver, so the host can
# see mem-set work end to end without a Linux guest (which cannot reach user
# space on a software-nested KVM):
#   - finds the virtio-balloon function (1af4:1045) on PCI bus 0 through
#     0xCF8/0xCFC and takes BAR0 as the VMM assigned it; the structures are
#     where our transport puts them (common 0x0, device config 0x2000,
#     doorbells 0x3000, 4 bytes a queue)
#   - negotiates VERSION_1 only, sets up the inflate and deflate queues (8
#     entries each, rings at 0x300000 and 0x304000) without MSI-X: it polls
#   - touches one qword in each of the 16384 pages at 16-80 MiB and says FILLED
#   - then forever: polls num_pages; inflates (frames 0x1000 upwards, 256 a
#     request) or deflates (from the top) until the balloon holds that many
#     pages (at most 16384), waits for each request to be used, writes
#     actual, and says INFLATED n or DEFLATED n (hex). Deflated pages must
#     read as zeros (else NONZERO and FAILED); they are then used again.
# Entered in 64-bit mode by the direct boot, identity-mapped below 4 GiB.
    .intel_syntax noprefix
    .code64
    .text
    .globl _start

    .set RINGS, 0x300000            # queue q: descriptors RINGS + q*0x4000, avail +0x1000, used +0x2000
    .set LIST, 0x310000             # the frame list of the request in flight
    .set FIRST_FRAME, 0x1000        # 16 MiB
    .set MAX_PAGES, 16384           # 64 MiB

_start:
    lea rsi, [rip + s_hello]
    call puts

    # Find 1af4:1045 on bus 0.
    mov r8d, 1
1:  mov eax, r8d
    shl eax, 11
    or eax, 0x80000000
    mov dx, 0xcf8
    out dx, eax
    mov dx, 0xcfc
    in eax, dx
    cmp eax, 0x10451af4
    je 2f
    inc r8d
    cmp r8d, 32
    jb 1b
    jmp fail
2:  mov eax, r8d                    # BAR0, a 64-bit memory BAR
    shl eax, 11
    or eax, 0x80000010
    mov dx, 0xcf8
    out dx, eax
    mov dx, 0xcfc
    in eax, dx
    and eax, 0xfffffff0
    mov ebx, eax
    mov eax, r8d
    shl eax, 11
    or eax, 0x80000014
    mov dx, 0xcf8
    out dx, eax
    mov dx, 0xcfc
    in eax, dx
    shl rax, 32
    or rbx, rax
    test rbx, rbx
    jz fail

    # Rings start zeroed.
    mov rdi, RINGS
    mov ecx, 0x8000 / 8
    xor eax, eax
    rep stosq

    # Reset, ACKNOWLEDGE, DRIVER, VERSION_1, FEATURES_OK.
    mov byte ptr [rbx + 0x14], 0
    mov byte ptr [rbx + 0x14], 1
    mov byte ptr [rbx + 0x14], 3
    mov dword ptr [rbx + 0x08], 0
    mov dword ptr [rbx + 0x0c], 0
    mov dword ptr [rbx + 0x08], 1
    mov dword ptr [rbx + 0x0c], 1
    mov byte ptr [rbx + 0x14], 0xb
    mov al, [rbx + 0x14]
    test al, 8
    jz fail

    # Queues 0 (inflate) and 1 (deflate).
    xor ecx, ecx
3:  mov word ptr [rbx + 0x16], cx
    mov word ptr [rbx + 0x18], 8
    mov eax, ecx
    shl eax, 14
    add eax, RINGS
    mov dword ptr [rbx + 0x20], eax
    mov dword ptr [rbx + 0x24], 0
    add eax, 0x1000
    mov dword ptr [rbx + 0x28], eax
    mov dword ptr [rbx + 0x2c], 0
    add eax, 0x1000
    mov dword ptr [rbx + 0x30], eax
    mov dword ptr [rbx + 0x34], 0
    mov word ptr [rbx + 0x1c], 1
    cmp word ptr [rbx + 0x1c], 1
    jne fail
    inc ecx
    cmp ecx, 2
    jb 3b
    mov byte ptr [rbx + 0x14], 0xf  # DRIVER_OK
    mov al, [rbx + 0x14]
    cmp al, 0xf
    jne fail

    # Touch the pages the balloon will take: the host's RSS grows by 64 MiB.
    mov rdi, FIRST_FRAME * 4096
    mov ecx, MAX_PAGES
4:  mov [rdi], rdi
    add rdi, 4096
    dec ecx
    jnz 4b
    lea rsi, [rip + s_filled]
    call puts

    xor r12d, r12d                  # pages in the balloon
wait:
    mov r13d, [rbx + 0x2000]        # num_pages
    cmp r13, MAX_PAGES
    jbe 5f
    mov r13d, MAX_PAGES
5:  cmp r13, r12
    ja inflate
    jb deflate
    mov ecx, 100000                 # a while between polls: each is a VM exit
6:  dec ecx
    jnz 6b
    jmp wait

inflate:
    mov rcx, r13
    sub rcx, r12
    cmp rcx, 256
    jbe 7f
    mov ecx, 256
7:  xor edx, edx
    lea rax, [r12 + FIRST_FRAME]
8:  mov dword ptr [rdx*4 + LIST], eax
    inc eax
    inc edx
    cmp edx, ecx
    jb 8b
    add r12, rcx
    xor esi, esi
    call submit
    cmp r12, r13
    jb inflate
    mov dword ptr [rbx + 0x2004], r12d  # actual
    lea rsi, [rip + s_inflated]
    call puts
    mov rax, r12
    call hex
    call newline
    jmp wait

deflate:
    mov rcx, r12
    sub rcx, r13
    cmp rcx, 256
    jbe 9f
    mov ecx, 256
9:  xor edx, edx
    lea rax, [r12 + FIRST_FRAME - 1]
10: mov dword ptr [rdx*4 + LIST], eax
    dec eax
    inc edx
    cmp edx, ecx
    jb 10b
    sub r12, rcx
    mov esi, 1
    call submit
    # The pages are ours again: zeros (their contents went with the
    # inflate), and usable.
    lea rdi, [r12 + FIRST_FRAME]
    shl rdi, 12
11: cmp qword ptr [rdi], 0
    jne nonzero
    mov [rdi], rdi
    add rdi, 4096
    dec rcx
    jnz 11b
    cmp r12, r13
    ja deflate
    mov dword ptr [rbx + 0x2004], r12d  # actual
    lea rsi, [rip + s_deflated]
    call puts
    mov rax, r12
    call hex
    call newline
    jmp wait

nonzero:
    lea rsi, [rip + s_nonzero]
    call puts
fail:
    lea rsi, [rip + s_fail]
    call puts
    cli
12: hlt
    jmp 12b

# submit: queue esi (0 or 1), ecx frames listed at LIST. One descriptor
# (head 0), made available, the doorbell rung, then waits until the device
# has used it. Keeps rbx, rcx, r12, r13.
submit:
    mov eax, esi
    shl eax, 14
    add eax, RINGS
    mov r8, rax
    mov qword ptr [r8], LIST
    lea edx, [rcx * 4]
    mov dword ptr [r8 + 8], edx
    mov dword ptr [r8 + 12], 0      # flags 0 (device-readable), next 0
    movzx edx, word ptr [r8 + 0x1002]
    mov r9d, edx
    and r9d, 7
    mov word ptr [r8 + r9 * 2 + 0x1004], 0
    inc edx
    mov word ptr [r8 + 0x1002], dx
    mov word ptr [rbx + rsi * 4 + 0x3000], si
13: cmp word ptr [r8 + 0x2002], dx
    je 14f
    pause
    jmp 13b
14: ret

# hex: " " and rax as 16 hex digits. Keeps everything but rax, rdi, and rcx.
hex:
    push rcx
    mov dil, ' '
    call putc
    mov rcx, 16
30: rol rax, 4
    push rax
    and eax, 15
    cmp al, 10
    jb 31f
    add al, 'a' - 10 - '0'
31: add al, '0'
    mov dil, al
    call putc
    pop rax
    dec rcx
    jnz 30b
    pop rcx
    ret

    .include "serial.inc"

s_hello:    .asciz "BALLOON-GUEST\n"
s_filled:   .asciz "FILLED\n"
s_inflated: .asciz "INFLATED"
s_deflated: .asciz "DEFLATED"
s_nonzero:  .asciz "NONZERO\n"
s_fail:     .asciz "FAILED\n"
