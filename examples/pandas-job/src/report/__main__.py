from report.job import main

main()
