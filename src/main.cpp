#include "scrapekeep/cli/app.hpp"

int main(int argc, char** argv) { return scrapekeep::cli::run(argc, argv); }
