/* Calls a function nobody defines: it becomes the import env.not_provided. */
extern int not_provided(int);

int main(void) { return not_provided(1); }
