/* A library-style module: exports a function but has no _start (build with -nostartfiles
 * -Wl,--no-entry -Wl,--export=add). */
int add(int a, int b) { return a + b; }
