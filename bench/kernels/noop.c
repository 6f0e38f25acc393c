/* Does nothing: the cost of starting and finishing one granule (or one process). */
int main(void) { return 0; }
