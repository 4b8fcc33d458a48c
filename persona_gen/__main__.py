from persona_gen.cli import main

main()
