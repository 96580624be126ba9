#include <iostream>
int main() { std::cout << "moegrad\n"; }
