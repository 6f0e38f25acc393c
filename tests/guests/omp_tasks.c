/* OpenMP tasks: recursive tasks with taskwait, firstprivate and shared data, taskgroup,
 * depend clauses, if(0) tasks, taskloop and taskyield, created from single and master. */
#include <omp.h>
#include <stdio.h>

static long fib(int n) {
    if (n < 2)
        return n;
    long a = 0, b = 0;
#pragma omp task shared(a) firstprivate(n)
    a = fib(n - 1);
#pragma omp task shared(b) firstprivate(n)
    b = fib(n - 2);
#pragma omp taskwait
    return a + b;
}

int main(void) {
    long result = 0;
#pragma omp parallel
    {
#pragma omp single
        result = fib(20);
    }
    printf("fib(20)=%ld\n", result);

    int values[100] = {0};
#pragma omp parallel num_threads(4)
    {
#pragma omp master
        {
#pragma omp taskgroup
            {
                for (int i = 0; i < 100; i++) {
#pragma omp task firstprivate(i) shared(values)
                    values[i] = i * 3;
                }
            }
        }
    }
    long sum = 0;
    for (int i = 0; i < 100; i++)
        sum += values[i];
    printf("taskgroup sum=%ld\n", sum);

    int x = 1, y = 0, z = 0;
#pragma omp parallel num_threads(2)
#pragma omp single
    {
#pragma omp task depend(out : x) shared(x)
        x = 10;
#pragma omp task depend(in : x) depend(out : y) shared(x, y)
        y = x + 5;
#pragma omp task depend(in : y) shared(y, z)
        z = y * 2;
#pragma omp taskwait
    }
    printf("depend: %d %d %d\n", x, y, z);

    int undeferred = 0;
#pragma omp task if (0) shared(undeferred)
    undeferred = 7;
    printf("if(0) task: %d\n", undeferred);

    long loop_sum = 0;
#pragma omp parallel
#pragma omp single
    {
#pragma omp taskloop grainsize(10) reduction(+ : loop_sum)
        for (int i = 0; i < 500; i++)
            loop_sum += i;
    }
    printf("taskloop: %ld\n", loop_sum);

    int yields = 0;
#pragma omp parallel num_threads(2)
    {
#pragma omp taskyield
#pragma omp atomic
        yields++;
    }
    printf("taskyield threads ok: %d\n", yields >= 1);
    printf("in_final=%d\n", omp_in_final());
    return 0;
}
