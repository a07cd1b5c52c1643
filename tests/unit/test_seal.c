#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "seal/seal.h"
static void t(void **state) { (void)state; }
int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(t) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
