import logging

# On CPUs with AVX512-BF16, importing bitsandbytes (which peft does) tries to fetch an optional
# inference kernel from the Hugging Face hub and logs a warning telling users to `pip install
# kernels`. Training never uses that kernel (it only serves single-token inference), so the
# advice is noise. Set here, so it runs before any recipe module imports peft.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
