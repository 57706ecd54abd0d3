// A small typed eBPF assembler: instructions as the kernel defines them
// (include/uapi/linux/bpf.h, Documentation/bpf/standardization/
// instruction-set.rst), with named labels resolved to jump offsets when the
// program is assembled. It knows nothing about what a program means.

/** A register, r0..r10 (r10 is the read-only frame pointer). */
export interface Reg {
  readonly reg: number;
}
const reg = (n: number): Reg => Object.freeze({ reg: n });
export const R0 = reg(0);
export const R1 = reg(1);
export const R2 = reg(2);
export const R3 = reg(3);
export const R4 = reg(4);
export const R5 = reg(5);
export const R6 = reg(6);
export const R7 = reg(7);
export const R8 = reg(8);
export const R9 = reg(9);
export const R10 = reg(10);
/** The frame pointer: the stack is the 512 bytes below it. */
export const FP = R10;

/** A source operand: a register or a 32-bit immediate (sign-extended by 64-bit operations). */
export type Operand = Reg | number;

// Instruction classes.
const BPF_LD = 0x00;
const BPF_LDX = 0x01;
const BPF_ST = 0x02;
const BPF_STX = 0x03;
const BPF_ALU = 0x04;
const BPF_JMP = 0x05;
const BPF_JMP32 = 0x06;
const BPF_ALU64 = 0x07;
// Source.
const BPF_K = 0x00;
const BPF_X = 0x08;
// Modes.
const BPF_IMM = 0x00;
const BPF_MEM = 0x60;
const BPF_ATOMIC = 0xc0;

/** Access sizes. */
export const SIZES = { w: 0x00, h: 0x08, b: 0x10, dw: 0x18 } as const;
export type Size = keyof typeof SIZES;

/** ALU operations. */
export const ALU = {
  add: 0x00, sub: 0x10, mul: 0x20, div: 0x30, or: 0x40, and: 0x50, lsh: 0x60, rsh: 0x70,
  mod: 0x90, xor: 0xa0, mov: 0xb0, arsh: 0xc0,
} as const;
export type AluOp = keyof typeof ALU;
const BPF_NEG = 0x80;
const BPF_END = 0xd0;

/** Conditional jumps (unsigned unless the name says signed). */
export const JMP = {
  jeq: 0x10, jgt: 0x20, jge: 0x30, jset: 0x40, jne: 0x50, jsgt: 0x60, jsge: 0x70,
  jlt: 0xa0, jle: 0xb0, jslt: 0xc0, jsle: 0xd0,
} as const;
export type JmpOp = keyof typeof JMP;
const BPF_JA = 0x00;
const BPF_CALL = 0x80;
const BPF_EXIT = 0x90;

/** Atomic operations on memory (BPF_STX | BPF_ATOMIC, the operation in imm). */
export const ATOMIC = { add: 0x00, or: 0x40, and: 0x50, xor: 0xa0, fetchAdd: 0x01, xchg: 0xe1, cmpxchg: 0xf1 } as const;
export type AtomicOp = keyof typeof ATOMIC;

/** ld_imm64 src_reg: the immediate is a map fd (the kernel swaps in the map's address). */
export const BPF_PSEUDO_MAP_FD = 1;

/** One 8-byte instruction before label resolution. */
interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
  /** A jump to this label: off is computed at assembly. */
  target?: string;
}

const isReg = (o: Operand): o is Reg => typeof o === 'object';

function checkReg(r: Reg, what: string): number {
  if (!Number.isInteger(r.reg) || r.reg < 0 || r.reg > 10) throw new RangeError(`bpf ${what}: bad register ${r.reg}`);
  return r.reg;
}
function checkImm(v: number, what: string): number {
  if (!Number.isInteger(v) || v < -0x80000000 || v > 0xffffffff) throw new RangeError(`bpf ${what}: immediate ${v} is not 32-bit`);
  return v | 0;
}
function checkOff(v: number, what: string): number {
  if (!Number.isInteger(v) || v < -0x8000 || v > 0x7fff) throw new RangeError(`bpf ${what}: offset ${v} is not 16-bit`);
  return v;
}

/**
 * Build a program instruction by instruction; `assemble()` returns the
 * bytes BPF_PROG_LOAD takes. Jumps name labels defined anywhere in the
 * program; a label names the next instruction emitted after it.
 */
export class Asm {
  private readonly insns: Insn[] = [];
  private readonly labels = new Map<string, number>();

  /** Instruction slots so far (ld_imm64 takes two). */
  get length(): number {
    return this.insns.length;
  }

  private emit(i: Insn): this {
    this.insns.push(i);
    return this;
  }

  private alu(cls: number, op: AluOp, dst: Reg, src: Operand): this {
    const what = `${cls === BPF_ALU64 ? 'alu64' : 'alu32'} ${op}`;
    const d = checkReg(dst, what);
    if (isReg(src)) return this.emit({ code: cls | ALU[op] | BPF_X, dst: d, src: checkReg(src, what), off: 0, imm: 0 });
    return this.emit({ code: cls | ALU[op] | BPF_K, dst: d, src: 0, off: 0, imm: checkImm(src, what) });
  }

  /** 64-bit ALU: dst = dst op src (mov: dst = src). */
  alu64(op: AluOp, dst: Reg, src: Operand): this {
    return this.alu(BPF_ALU64, op, dst, src);
  }
  /** 32-bit ALU: the result is zero-extended into the 64-bit register. */
  alu32(op: AluOp, dst: Reg, src: Operand): this {
    return this.alu(BPF_ALU, op, dst, src);
  }
  mov64(dst: Reg, src: Operand): this {
    return this.alu64('mov', dst, src);
  }
  mov32(dst: Reg, src: Operand): this {
    return this.alu32('mov', dst, src);
  }
  neg64(dst: Reg): this {
    return this.emit({ code: BPF_ALU64 | BPF_NEG, dst: checkReg(dst, 'neg'), src: 0, off: 0, imm: 0 });
  }
  /** Byte swap to (from) big-endian, width 16, 32 or 64 bits. */
  toBe(dst: Reg, bits: 16 | 32 | 64): this {
    return this.emit({ code: BPF_ALU | BPF_END | BPF_X, dst: checkReg(dst, 'be'), src: 0, off: 0, imm: bits });
  }

  /** dst = *(size *)(src + off), zero-extended. */
  ldx(size: Size, dst: Reg, src: Reg, off: number): this {
    return this.emit({ code: BPF_LDX | BPF_MEM | SIZES[size], dst: checkReg(dst, 'ldx'), src: checkReg(src, 'ldx'), off: checkOff(off, 'ldx'), imm: 0 });
  }
  /** *(size *)(dst + off) = imm. */
  st(size: Size, dst: Reg, off: number, imm: number): this {
    return this.emit({ code: BPF_ST | BPF_MEM | SIZES[size], dst: checkReg(dst, 'st'), src: 0, off: checkOff(off, 'st'), imm: checkImm(imm, 'st') });
  }
  /** *(size *)(dst + off) = src. */
  stx(size: Size, dst: Reg, off: number, src: Reg): this {
    return this.emit({ code: BPF_STX | BPF_MEM | SIZES[size], dst: checkReg(dst, 'stx'), src: checkReg(src, 'stx'), off: checkOff(off, 'stx'), imm: 0 });
  }
  /**
   * An atomic operation on *(size *)(dst + off) with src; the fetch forms
   * put the old value in src, cmpxchg compares with r0 and puts the old
   * value in r0. Only 32- and 64-bit sizes exist.
   */
  atomic(size: 'w' | 'dw', op: AtomicOp, dst: Reg, off: number, src: Reg): this {
    return this.emit({ code: BPF_STX | BPF_ATOMIC | SIZES[size], dst: checkReg(dst, 'atomic'), src: checkReg(src, 'atomic'), off: checkOff(off, 'atomic'), imm: ATOMIC[op] });
  }
  /** r0 = cmpxchg(*(size *)(dst + off), expected r0, new src): r0 gets the old value. */
  cmpxchg(size: 'w' | 'dw', dst: Reg, off: number, src: Reg): this {
    return this.atomic(size, 'cmpxchg', dst, off, src);
  }

  /** dst = a 64-bit immediate (two instruction slots). */
  ldImm64(dst: Reg, value: bigint, pseudo = 0): this {
    const v = BigInt.asUintN(64, value);
    const d = checkReg(dst, 'ld_imm64');
    this.emit({ code: BPF_LD | BPF_IMM | SIZES.dw, dst: d, src: pseudo, off: 0, imm: Number(v & 0xffffffffn) | 0 });
    return this.emit({ code: 0, dst: 0, src: 0, off: 0, imm: Number(v >> 32n) | 0 });
  }
  /** dst = the map open at fd (ld_imm64 with BPF_PSEUDO_MAP_FD). */
  ldMapFd(dst: Reg, fd: number): this {
    if (!Number.isInteger(fd) || fd < 0) throw new RangeError(`bpf ld_map_fd: bad fd ${fd}`);
    return this.ldImm64(dst, BigInt(fd), BPF_PSEUDO_MAP_FD);
  }

  private jump(cls: number, op: JmpOp, dst: Reg, src: Operand, target: string): this {
    const what = `${cls === BPF_JMP32 ? 'jmp32' : 'jmp'} ${op}`;
    const d = checkReg(dst, what);
    if (isReg(src)) return this.emit({ code: cls | JMP[op] | BPF_X, dst: d, src: checkReg(src, what), off: 0, imm: 0, target });
    return this.emit({ code: cls | JMP[op] | BPF_K, dst: d, src: 0, off: 0, imm: checkImm(src, what), target });
  }
  /** if (dst op src) goto target, comparing 64 bits (an immediate is sign-extended). */
  jmp(op: JmpOp, dst: Reg, src: Operand, target: string): this {
    return this.jump(BPF_JMP, op, dst, src, target);
  }
  /** if (dst op src) goto target, comparing the low 32 bits. */
  jmp32(op: JmpOp, dst: Reg, src: Operand, target: string): this {
    return this.jump(BPF_JMP32, op, dst, src, target);
  }
  /** goto target. */
  ja(target: string): this {
    return this.emit({ code: BPF_JMP | BPF_JA, dst: 0, src: 0, off: 0, imm: 0, target });
  }
  /** Call helper function number id (arguments r1..r5, result r0; r1..r5 are clobbered). */
  call(id: number): this {
    return this.emit({ code: BPF_JMP | BPF_CALL, dst: 0, src: 0, off: 0, imm: checkImm(id, 'call') });
  }
  exit(): this {
    return this.emit({ code: BPF_JMP | BPF_EXIT, dst: 0, src: 0, off: 0, imm: 0 });
  }

  /** Name the next instruction. */
  label(name: string): this {
    if (this.labels.has(name)) throw new RangeError(`bpf: label ${name} defined twice`);
    this.labels.set(name, this.insns.length);
    return this;
  }

  /** The program's bytes, every jump resolved; throws on an undefined label or a jump out of range. */
  assemble(): Buffer {
    const out = Buffer.alloc(8 * this.insns.length);
    this.insns.forEach((i, pc) => {
      let off = i.off;
      if (i.target !== undefined) {
        const to = this.labels.get(i.target);
        if (to === undefined) throw new RangeError(`bpf: jump to undefined label ${i.target}`);
        if (to >= this.insns.length) throw new RangeError(`bpf: label ${i.target} is past the last instruction`);
        off = checkOff(to - (pc + 1), `jump to ${i.target}`);
      }
      out.writeUInt8(i.code, 8 * pc);
      out.writeUInt8((i.src << 4) | i.dst, 8 * pc + 1);
      out.writeInt16LE(off, 8 * pc + 2);
      out.writeInt32LE(i.imm, 8 * pc + 4);
    });
    return out;
  }
}
