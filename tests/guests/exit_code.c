/* Exits with the code given as argv[1]; through exit() when argv[2] is "exit". */
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    int code = argc > 1 ? atoi(argv[1]) : 0;
    if (argc > 2 && strcmp(argv[2], "exit") == 0) {
        exit(code);
    }
    return code;
}
