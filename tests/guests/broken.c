/* Does not compile: used to check that compiler diagnostics reach the user. */
int main(void) { return undeclared_variable; }
