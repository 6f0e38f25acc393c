// C++ through `faabric c++`: libc++ containers without exceptions.
#include <cstdio>
#include <vector>

int main() {
    std::vector<int> values{1, 2, 3, 4};
    int total = 0;
    for (int v : values) total += v;
    std::printf("cpp total=%d\n", total);
    return 0;
}
