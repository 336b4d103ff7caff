/*
 * kata-ts-cpu-features: prints the CPU features V8 folds into its snapshot
 * check (ScriptCompiler::CachedDataVersionTag): the SSE/AVX family, FMA,
 * F16C, BMI, LZCNT, POPCNT, SAHF, CET shadow stacks, the OS's AVX state
 * (XGETBV) and the vendor, family and model (Atom, JCC erratum).
 *
 * The guest's /init compares its output with the line recorded when the
 * agent's startup snapshot was built: node refuses a snapshot built on a CPU
 * whose features differ, and as PID 1 that refusal would end the VM. Only the
 * bits V8 reads are printed, so that CPUID bits which differ between QEMU's
 * user and system emulation of the same CPU model (hypervisor, OSPKE) do not.
 */
#include <cpuid.h>
#include <stdio.h>
#include <string.h>

static unsigned bits(unsigned value, const int *positions, int count) {
  unsigned out = 0;
  for (int i = 0; i < count; i++) out |= ((value >> positions[i]) & 1u) << i;
  return out;
}

int main(void) {
  unsigned a, b, c, d;
  char vendor[13] = {0};
  __cpuid(0, a, b, c, d);
  unsigned max = a;
  memcpy(vendor, &b, 4);
  memcpy(vendor + 4, &d, 4);
  memcpy(vendor + 8, &c, 4);

  /* leaf 1 ECX: SSE3 0, SSSE3 9, FMA 12, SSE4.1 19, SSE4.2 20, POPCNT 23, OSXSAVE 27, AVX 28, F16C 29 */
  static const int leaf1[] = {0, 9, 12, 19, 20, 23, 27, 28, 29};
  __cpuid(1, a, b, c, d);
  unsigned family = ((a >> 8) & 0xf) + (((a >> 8) & 0xf) == 0xf ? ((a >> 20) & 0xff) : 0);
  unsigned model = ((a >> 4) & 0xf) | ((((a >> 8) & 0xf) >= 6) ? ((a >> 16) & 0xf) << 4 : 0);
  unsigned ecx1 = bits(c, leaf1, 9);
  int osxsave = (c >> 27) & 1;

  /* leaf 7: EBX BMI1 3, AVX2 5, BMI2 8; ECX CET_SS 7; subleaf 1 EAX AVX-VNNI 4 */
  unsigned ebx7 = 0, ecx7 = 0, eax71 = 0;
  if (max >= 7) {
    static const int leaf7b[] = {3, 5, 8};
    static const int leaf7c[] = {7};
    static const int leaf71a[] = {4};
    __cpuid_count(7, 0, a, b, c, d);
    ebx7 = bits(b, leaf7b, 3);
    ecx7 = bits(c, leaf7c, 1);
    __cpuid_count(7, 1, a, b, c, d);
    eax71 = bits(a, leaf71a, 1);
  }

  /* leaf 0x80000001 ECX: LAHF/SAHF 0, LZCNT 5 */
  unsigned ext = 0;
  if (__get_cpuid_max(0x80000000, NULL) >= 0x80000001) {
    static const int leafx[] = {0, 5};
    __cpuid(0x80000001, a, b, c, d);
    ext = bits(c, leafx, 2);
  }

  /* XCR0: the OS saves SSE and AVX state (V8's OSHasAVXSupport) */
  unsigned xcr0 = 0;
  if (osxsave) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = lo & 6u;
  }

  printf("%s family %u model %u leaf1 %x leaf7 %x/%x/%x ext %x xcr0 %x\n", vendor, family, model, ecx1, ebx7, ecx7, eax71, ext, xcr0);
  return 0;
}
