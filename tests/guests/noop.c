/* Does nothing: measures the cost of starting a granule. */
int main(void) { return 0; }
