/* Uses an OpenMP construct faabric does not provide (teams): loading must fail by name. */
#include <omp.h>
#include <stdio.h>

int main(void) {
    int total = 0;
#pragma omp teams num_teams(2) reduction(+ : total)
    total += omp_get_team_num();
    printf("%d\n", total);
    return 0;
}
